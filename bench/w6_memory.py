"""W6 memory: route many events through one worker process and watch its RSS.

Same rules (shipped + 200 extra), directory and events as W1, so every event is
asserted into durable_rules, fires ~4 rules, is planned and written. The events go
in by the product's own publish path (``router.routing.pipeline.publish``) straight into
the database, plus one route job per 100 events on Redis (no HTTP: the API is not
what is measured here), with at most two chunks in flight. The worker consumes
only ``herald.route``. To keep the database and Redis small over a million
events, the bench schema's event/feed/delivery tables and the channel queues in
Redis DB 15 are emptied between chunks once everything before is routed (the
worker holds no state about them).

RSS (psutil) is sampled after each chunk. The baseline is taken after a warm-up;
the verdict uses the growth measured at 1,000,000 events, or, when the run is cut
short by its time budget (``--w6-minutes``), the growth extrapolated linearly
(least squares over the post-warm-up samples) to 1,000,000 events, said so in
the figure.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import redis

from bench import routing_bench as rb
from bench.common import (
    REDIS_URL,
    Deployment,
    Row,
    Sizes,
    pg_schema,
    progress,
    rss_bytes,
    tmpdir,
    verdict,
)
from bench.routing_bench import build_rules
from bench.w1_routing import CHANNEL_QUEUES
from router.core.config import load_config
from router.directory import tenants
from router.routing.events import Event
from router.routing.pipeline import publish

TARGET = 0.10
GOAL = 1_000_000
MB = 1024 * 1024
STALL_S = 120.0
EMPTY_EVERY = 2  # chunks: keeps feed_items (and receivers' unread counts) small


def _events(n: int, prefix: str) -> list[Event]:
    out = []
    for e in rb.events("bench", n):
        doc = e.as_doc()
        doc["id"] = f"{prefix}{doc['id']}"
        doc["subject"]["id"] = f"{prefix}{doc['subject']['id']}"
        out.append(Event.model_validate(doc))
    return out


def _routed(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM events WHERE status <> 'received'").fetchone()
    return int(row[0]) if row else 0


def _wait(conn: psycopg.Connection[Any], want: int, resend: Any, timeout: float = 600) -> None:
    """Wait until `want` events are routed; if nothing moves for STALL_S, the events still
    `received` are enqueued again (queue messages were seen vanishing on this shared
    machine; the router claims events, so none is routed twice)."""
    deadline = time.perf_counter() + timeout
    last, moved = -1, time.perf_counter()
    while (routed := _routed(conn)) < want:
        now = time.perf_counter()
        if routed != last:
            last, moved = routed, now
        elif now - moved > STALL_S:
            stuck = [r[0] for r in conn.execute(
                "SELECT pk FROM events WHERE status = 'received' ORDER BY pk")]
            progress(f"W6:   no progress for {STALL_S:g} s: enqueueing {len(stuck)} events "
                     "again")
            resend(stuck)
            moved = now
        if now > deadline:
            raise RuntimeError(f"routing stalled: {routed} of {want} routed")
        time.sleep(0.05)


def _empty(conn: psycopg.Connection[Any]) -> None:
    """Empty the bench tables and channel queues once the worker is done with them: the
    route actor publishes browser items inline after its commit, so wait for those too;
    TRUNCATE then waits at most 5 s for locks and is tried again on a conflict."""
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        row = conn.execute("SELECT count(*) FROM deliveries WHERE channel = 'browser' "
                           "AND status IN ('pending', 'sending')").fetchone()
        if not row or not row[0]:
            break
        time.sleep(0.05)
    for attempt in range(10):
        try:
            conn.execute("SET lock_timeout = '5s'")
            conn.execute("TRUNCATE delivery_log, deliveries, feed_items, unsubscribe_tokens, "
                         "events")
            break
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable):
            if attempt == 9:
                raise
            time.sleep(0.5)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.delete(*[f"dramatiq:{q}{suffix}" for q in CHANNEL_QUEUES
                        for suffix in ("", ".msgs")])
    finally:
        client.close()


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares bytes per event over (events, rss) points."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / var if var else 0.0


def run(sizes: Sizes, raw: dict[str, Any], profile_dir: str | None = None,
        peers: bool = True) -> list[Row]:
    from router.runtime import Runtime

    goal, chunk, warm = sizes.w6_events, sizes.w6_chunk, sizes.w6_warmup
    budget = sizes.w6_minutes * 60
    samples: list[tuple[int, int]] = []
    with pg_schema("bench_w6") as schema, tmpdir("w6") as tmp:
        rules = build_rules(tmp, sizes.w1_extra_rules)
        with schema.db.session() as s:
            tenants.create(s, "Bench W6", tenant_id="bench")
        rb.directory(schema.db, "bench", sizes.w1_employees, create_tenant=False)
        dep = Deployment(tmp, schema.url, rules_path=str(rules))
        runtime = Runtime(load_config(database_url=schema.url, broker_url=REDIS_URL,
                                      rules_path=str(rules)))
        try:
            dep.start_worker(threads=sizes.w1_threads, queues=["herald.route"])
            pid = dep.pid("worker")
            resend = runtime.workers.enqueue_route
            start_rss = rss_bytes(pid)
            progress(f"W6: worker RSS at start {start_rss / MB:.0f} MB; routing up to "
                     f"{goal:,} events in chunks of {chunk:,} (budget "
                     f"{sizes.w6_minutes:g} min)")
            template = _events(chunk, "")
            published = routed_base = 0
            started = time.perf_counter()
            last_report = started
            with psycopg.connect(schema.url, autocommit=True) as conn:
                i = 0
                while published < goal and time.perf_counter() - started < budget:
                    events = [e.model_copy(update={
                        "id": f"c{i}-{e.id}",
                        "subject": e.subject.model_copy(update={"id": f"c{i}-{e.subject.id}"})})
                        for e in template]
                    with runtime.db.session() as s:
                        pks = [p.pk for p in publish(s, "bench", events)]
                    runtime.workers.enqueue_route(pks)
                    published += len(events)
                    i += 1
                    _wait(conn, published - routed_base - chunk, resend)  # <= 2 chunks in flight
                    samples.append((published - chunk, rss_bytes(pid)))
                    if i % EMPTY_EVERY == 0:
                        _wait(conn, published - routed_base, resend)
                        _empty(conn)
                        routed_base = published
                    if time.perf_counter() - last_report > 15:
                        last_report = time.perf_counter()
                        done = samples[-1][0]
                        progress(f"W6:   {done:,} events routed "
                                 f"({done / (last_report - started):,.0f}/s), "
                                 f"RSS {samples[-1][1] / MB:.0f} MB")
                _wait(conn, published - routed_base, resend)
                samples.append((published, rss_bytes(pid)))
            elapsed = time.perf_counter() - started
        finally:
            runtime.close()
            dep.stop()
    after_warm = [p for p in samples if p[0] >= warm] or samples[-1:]
    base = after_warm[0]
    end = samples[-1]
    growth = (end[1] - base[1]) / base[1]
    per_event = slope(after_warm)
    projected = per_event * (GOAL - base[0]) / base[1]
    full = end[0] >= GOAL
    if sizes.smoke:  # a few hundred events say nothing about a million: no extrapolation
        projected, full = 0.0, True
    judged = growth if full else max(growth, projected)
    rate = end[0] / elapsed
    progress(f"W6: {end[0]:,} events in {elapsed:.0f} s ({rate:,.0f}/s); RSS "
             f"{base[1] / MB:.0f} MB after {base[0]:,} -> {end[1] / MB:.0f} MB "
             f"({growth:+.1%}); slope {per_event * 100_000 / MB:+.2f} MB per 100k events"
             + ("" if full else f"; extrapolated to 1M: {projected:+.1%}"))
    figure = (f"memory: RSS {growth:+.1%} over {end[0]:,} events after warm-up"
              + ("" if full else f"; extrapolated to 1M: {projected:+.1%}"))
    return [Row("W6", figure, "< 10% growth after warm-up (at 1M events)",
                f"RSS at start {start_rss / MB:.0f} MB, after warm-up {base[1] / MB:.0f} MB",
                verdict(judged < TARGET), judged, "ratio",
                {"events": end[0], "seconds": round(elapsed, 1), "events_per_s": round(rate),
                 "rss_start_mb": round(start_rss / MB, 1),
                 "rss_after_warmup_mb": round(base[1] / MB, 1),
                 "rss_end_mb": round(end[1] / MB, 1), "growth": round(growth, 4),
                 "mb_per_100k_events": round(per_event * 100_000 / MB, 3),
                 "extrapolated_growth_at_1m": None if full else round(projected, 4),
                 "complete": full, "samples": [(e, round(r / MB, 1)) for e, r in samples],
                 "note": None if full else (
                     f"W6 routed {end[0]:,} events (asked {goal:,}, budget "
                     f"{sizes.w6_minutes:g} min), not {GOAL:,}: its 1M figure is a linear "
                     "extrapolation of the RSS samples after warm-up")})]
