"""Feed reads at scale: the unread count and the first page of one receiver.

    .venv/bin/python -m bench.feed_bench [--rows 1000000] [--users 10000] [--samples 2000]
                                         [--database-url URL] [--keep] [--explain]
                                         [--schema NAME]

Loads ROWS feed items over USERS employees of one fresh tenant with COPY (about
30% unread, months of history, some stacked counts, subjects shared by a few
receivers), ANALYZEs, then times the API's own read paths for random users:
``router.delivery.feed.unread_count`` and ``router.delivery.feed.page`` (50 items, newest first;
also with ``item_json`` of each row, the list the API answers with), each in its
own session as the API opens one per request. The rows go into a
schema of their own in the given database, dropped afterwards unless --keep;
``--schema NAME`` times the reads again on a schema kept by an earlier --keep run
(no reload).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import event, text

from router.core.enums import FeedView, ReceiverKind
from router.delivery import feed
from router.store.db import Database

DEFAULT_URL = os.environ.get("HERALD_BENCH_DATABASE_URL",
                             "postgresql://postgres@127.0.0.1:5432/test")
TENANT = "bench"
UNREAD_RATIO = 0.30
HISTORY = timedelta(days=120)
PAGE = 50
WARM_UP = 50
TYPES = [("ticket", "ticket.created", "New ticket"), ("ticket", "ticket.message_added",
         "New message on ticket"), ("ticket", "ticket.status_changed", "Ticket status changed"),
         ("task", "task.assigned", "Task assigned"), ("video_session", "video_session.requested",
         "Video session requested"), ("code", "code.paired", "Code paired")]
COLUMNS = ("tenant_id", "receiver_kind", "receiver_id", "seq", "event_type", "subject_kind",
           "subject_id", "subject_number", "code_id", "title", "message", "actor_name",
           "actor_avatar_url", "link", "count", "unread", "last_event_pk", "created_at",
           "updated_at", "read_at")


def rows(n: int, users: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Items in time order (seq grows with time, as in production); every subject is
    shared by up to len(TYPES) receivers, each with its own event type, so no two
    unread rows ever collide on the stacking index."""
    rnd = random.Random(seed)
    start = datetime.now(UTC) - HISTORY
    step = HISTORY / n
    for i in range(n):
        kind, etype, title = TYPES[i % len(TYPES)]
        subject = i // len(TYPES)
        updated = start + step * i
        stacked = rnd.random() < 0.1
        created = updated - timedelta(minutes=rnd.randint(1, 600)) if stacked else updated
        unread = rnd.random() < UNREAD_RATIO
        yield (TENANT, ReceiverKind.EMPLOYEE.value, f"u{rnd.randrange(users)}", i + 1, etype,
               kind, f"S-{subject}", f"#{subject}", None, f"{title} #{subject}",
               f"Someone did something on {kind} #{subject}: a message of typical length.",
               "Max Muster",
               "https://avatars.example.com/max.png", f"https://app.example.com/{kind}/{subject}",
               rnd.randint(2, 5) if stacked else 1, unread, i + 1, created, updated,
               None if unread else updated + timedelta(hours=1))


def load(url: str, n: int, users: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY feed_items ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for i, row in enumerate(rows(n, users), start=1):
                copy.write_row(row)
                if i % 100_000 == 0 or i == n:
                    print(f"  loaded {i:>10,} rows  {time.perf_counter() - started:6.1f} s",
                          flush=True)
        cur.execute("SELECT setval('feed_seq', %s)", (n,))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE feed_items")
    return time.perf_counter() - started


def measure(db: Database, users: int, samples: int,
            query: Callable[[Any, feed.Reader], Any]) -> list[float]:
    rnd = random.Random(11)
    timings: list[float] = []
    for i in range(WARM_UP + samples):
        reader = feed.Reader(TENANT, ReceiverKind.EMPLOYEE, f"u{rnd.randrange(users)}")
        with db.session() as s:
            started = time.perf_counter()
            query(s, reader)
            elapsed = time.perf_counter() - started
        if i >= WARM_UP:
            timings.append(elapsed * 1000)
    return timings


def page_json(s: Any, reader: feed.Reader) -> list[dict[str, Any]]:
    """The first page as the API answers it: the rows, then ``item_json`` of each."""
    return [feed.item_json(row) for row in feed.page(s, reader, PAGE, None, FeedView.ALL)[0]]


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def explain(db: Database, url: str, users: int) -> None:
    """EXPLAIN ANALYZE the SQL that feed.unread_count and feed.page really send."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    reader = feed.Reader(TENANT, ReceiverKind.EMPLOYEE, f"u{users // 2}")
    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.session() as s:
            feed.unread_count(s, reader)
            feed.page(s, reader, PAGE, None, FeedView.ALL)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    with psycopg.connect(url) as conn:
        for label, (statement, params) in zip(("unread count", "first page"), sent, strict=True):
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params).fetchall()
            print(f"\n{label}:\n  " + "\n  ".join(row[0] for row in plan))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=2_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--keep", action="store_true", help="keep the bench schema")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--schema", help="reuse a schema kept by --keep (rows not reloaded)")
    args = parser.parse_args(argv)
    schema = args.schema or f"herald_bench_{os.getpid()}"
    url = f"{args.database_url}?options=-csearch_path%3D{schema}"
    admin = Database(args.database_url)
    if not args.schema:
        with admin.engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    db = Database(url)
    try:
        run(db, url, args)
    finally:
        db.dispose()
        if not args.keep and not args.schema:
            with admin.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        else:
            print(f"kept schema {schema}")
        admin.dispose()
    return 0


def run(db: Database, url: str, args: argparse.Namespace) -> None:
    if not args.schema:
        print(f"==> schema, then {args.rows:,} feed rows over {args.users:,} users (COPY)")
        db.migrate()
        seconds = load(url, args.rows, args.users)
        print(f"  {args.rows / seconds:,.0f} rows/s")
    with db.session() as s:
        unread = s.execute(text("SELECT count(*), count(*) FILTER (WHERE unread), "
                                "pg_size_pretty(pg_total_relation_size('feed_items')) "
                                "FROM feed_items")).one()
    print(f"  {unread[0]:,} rows; {unread[1] / max(unread[0], 1):.1%} unread; "
          f"table + indexes {unread[2]}")
    queries: list[tuple[str, Callable[[Any, feed.Reader], Any]]] = [
        ("unread count", feed.unread_count),
        (f"first page ({PAGE})", lambda s, r: feed.page(s, r, PAGE, None, FeedView.ALL)),
        (f"first unread page ({PAGE})", lambda s, r: feed.page(s, r, PAGE, None, FeedView.UNREAD)),
        (f"first page as JSON ({PAGE})", page_json),
    ]
    results = []
    for label, query in queries:
        print(f"==> {label}: {args.samples:,} random users", flush=True)
        results.append((label, measure(db, args.users, args.samples, query)))
    if args.explain:
        explain(db, url, args.users)
    print(f"\n{'query':<26}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, timings in results:
        print(f"{label:<26}{statistics.median(timings):>9.2f}{quantile(timings, .9):>9.2f}"
              f"{quantile(timings, .99):>9.2f}{max(timings):>9.2f}")
    print(f"({args.rows:,} rows, {args.users:,} users, ~{args.rows // args.users} items and "
          f"~{int(args.rows * UNREAD_RATIO) // args.users} unread per user)")


if __name__ == "__main__":
    raise SystemExit(main())
