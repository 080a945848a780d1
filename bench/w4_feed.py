"""W4 feed reads: 1M feed rows over 10k users; the unread count and the first page
(50 items) of random users, p99 of each (target ≤ 5 ms).

Reuses bench/feed_bench.py: rows loaded with COPY, ANALYZEd, then the API's own
read paths (``router.delivery.feed.unread_count``, ``router.delivery.feed.page``) timed one session
per request, as the API opens them. The raw-limit column shows the same SQL sent
through plain psycopg (no ORM), the floor the database itself sets: with
PostgreSQL's default plan cache (a prepared statement gets a generic plan after
five runs), and in the detail also with Herald's own session settings
(``plan_cache_mode = force_custom_plan``: planned on every execution).
"""

from __future__ import annotations

import random
import time
from typing import Any

import psycopg
from sqlalchemy import event, text

from bench import feed_bench
from bench.common import Row, Sizes, pg_schema, progress, quantile, verdict
from router.core.enums import FeedView, ReceiverKind
from router.delivery import feed

TARGET_MS = 5.0


def captured_sql(db: Any, users: int) -> list[tuple[str, Any]]:
    """The SQL (with parameters) that unread_count and page really send."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    reader = feed.Reader(feed_bench.TENANT, ReceiverKind.EMPLOYEE, f"u{users // 2}")
    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.session() as s:
            feed.unread_count(s, reader)
            feed.page(s, reader, feed_bench.PAGE, None, FeedView.ALL)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    return sent


def plan_cache_mode(db: Any) -> str:
    """The plan_cache_mode Herald's own sessions run with."""
    with db.engine.connect() as conn:
        return str(conn.execute(text("SHOW plan_cache_mode")).scalar_one())


def raw_sql(url: str, statement: str, params: dict[str, Any], users: int, samples: int,
            user_key: str, mode: str = "auto") -> list[float]:
    """p-values of the same statement through psycopg, a random user each time, with
    the given plan_cache_mode."""
    rnd = random.Random(11)
    timings = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET plan_cache_mode = {mode}")
        for i in range(feed_bench.WARM_UP + samples):
            p = dict(params)
            p[user_key] = f"u{rnd.randrange(users)}"
            started = time.perf_counter()
            conn.execute(statement, p, prepare=True).fetchall()
            if i >= feed_bench.WARM_UP:
                timings.append((time.perf_counter() - started) * 1000)
    return timings


def run(sizes: Sizes, raw: dict[str, Any], profile_dir: str | None = None,
        peers: bool = True) -> list[Row]:
    rows_n, users, samples = sizes.w4_rows, sizes.w4_users, sizes.w4_samples
    with pg_schema("bench_w4") as schema:
        progress(f"W4: loading {rows_n:,} feed rows over {users:,} users (COPY) ...")
        seconds = feed_bench.load(schema.url, rows_n, users)
        results = {}
        for label, query in (("unread count", feed.unread_count),
                             ("first page (50)",
                              lambda s, r: feed.page(s, r, feed_bench.PAGE, None, FeedView.ALL))):
            progress(f"W4: {label}: {samples:,} random users")
            results[label] = feed_bench.measure(schema.db, users, samples, query)
        raws, customs = {}, {}
        mode = plan_cache_mode(schema.db)
        for label, (statement, params) in zip(results, captured_sql(schema.db, users),
                                              strict=True):
            key = next(k for k, v in params.items() if v == f"u{users // 2}")
            raws[label] = raw_sql(schema.url, statement, params, users, samples, key)
            customs[label] = raw_sql(schema.url, statement, params, users, samples, key, mode)
    out = []
    for label, timings in results.items():
        p50, p99 = quantile(timings, 0.5), quantile(timings, 0.99)
        raw_p99, custom = quantile(raws[label], 0.99), customs[label]
        progress(f"W4: {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms (same SQL via psycopg: "
                 f"p50 {quantile(raws[label], 0.5):.2f} ms, p99 {raw_p99:.2f} ms; with "
                 f"plan_cache_mode {mode}: p50 {quantile(custom, 0.5):.2f} ms, "
                 f"p99 {quantile(custom, 0.99):.2f} ms)")
        out.append(Row("W4", f"feed {label}: p99 {p99:.2f} ms (p50 {p50:.2f})",
                       f"p99 ≤ {TARGET_MS:g} ms",
                       f"same SQL via psycopg: p99 {raw_p99:.2f} ms",
                       verdict(p99 <= TARGET_MS), p99, "ms",
                       {"p50_ms": round(p50, 3), "p90_ms": round(quantile(timings, 0.9), 3),
                        "p99_ms": round(p99, 3), "max_ms": round(max(timings), 3),
                        "raw_psycopg_p50_ms": round(quantile(raws[label], 0.5), 3),
                        "raw_psycopg_p99_ms": round(raw_p99, 3),
                        "raw_psycopg_herald_plan_cache_mode": mode,
                        "raw_psycopg_herald_mode_p50_ms": round(quantile(custom, 0.5), 3),
                        "raw_psycopg_herald_mode_p99_ms": round(quantile(custom, 0.99), 3),
                        "rows": rows_n,
                        "users": users, "samples": samples,
                        "load_rows_per_s": round(rows_n / seconds)}))
    return out
