"""W1 routing throughput: batch publish -> feed rows + delivery rows committed and
channel jobs enqueued, one `herald worker` process consuming only `herald.route`.

Set-up: the shipped rules plus 200 extra rules (bench/routing_bench.py's
generator) in a rules directory given to the deployment as ``rules_path``; a
10k-employee directory loaded in bulk (routing_bench.directory); events from
routing_bench.events (~8 receivers each, browser + email channels: the employees
have email addresses and no push registrations, so push is dropped by the plan).

Measured: from the first ``POST /v1/events:batch`` (1,000 events per request, two
requests in flight) until every event is ``routed`` (its feed items and delivery
rows are written in the same transaction) and every delivery still pending sits
in a channel queue in Redis (the route actor enqueues after its commit; browser
deliveries it publishes inline, so those are already sent by then).

"Bare composition of the raw limits" is the ideal rate if an event cost only
what the machine's raw limits say its parts cost, measured in this run:
    1 / (1 / rules_assert_retract_per_s + rows_per_event / pg_rows_per_s
         + jobs_per_event / redis_push_per_s)
with rows_per_event = feed rows + delivery rows written per event, and
jobs_per_event = route messages + channel messages per event.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import redis

from bench import routing_bench as rb
from bench.common import (
    REDIS_URL,
    Deployment,
    Row,
    Sizes,
    busy_share,
    cpu_delta,
    machine_cpu,
    pg_backend_cpu,
    pg_schema,
    profiled,
    progress,
    tmpdir,
    verdict,
)
from router.directory import tenants

BATCH = 1000
TARGET = 1000.0
CHANNEL_QUEUES = ("herald.browser", "herald.email", "herald.push")


def docs(tenant: str, n: int, prefix: str) -> list[dict[str, Any]]:
    out = []
    for e in rb.events(tenant, n):
        doc = e.as_doc()
        doc["id"] = f"{prefix}{doc['id']}"
        doc["subject"]["id"] = f"{prefix}{doc['subject']['id']}"
        out.append(doc)
    return out


def post_all(url: str, key: str, batch_docs: list[dict[str, Any]], parallel: int = 2) -> float:
    """POST the docs in batches of 1,000 with `parallel` requests in flight, waiting out a
    429's Retry-After; returns when the last answer arrived (perf_counter)."""
    chunks = [batch_docs[i:i + BATCH] for i in range(0, len(batch_docs), BATCH)]

    def post(chunk: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=url, timeout=300,
                          headers={"Authorization": f"Bearer {key}"}) as http:
            response = http.post("/v1/events:batch", json=chunk)
            while response.status_code == 429:  # over the tenant's rate: as a client should
                time.sleep(float(response.headers.get("Retry-After", "1")))
                response = http.post("/v1/events:batch", json=chunk)
            if response.status_code != 202:
                raise RuntimeError(f"publish answered {response.status_code}: "
                                   f"{response.text[:500]}")

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(post, chunks))
    return time.perf_counter()


def routed_count(conn: psycopg.Connection[Any], prefix: str) -> tuple[int, int]:
    row = conn.execute("SELECT count(*) FILTER (WHERE status = 'routed'), "
                       "count(*) FILTER (WHERE status = 'failed') FROM events "
                       "WHERE event_id LIKE %s", (f"{prefix}%",)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def queued_ids() -> set[int]:
    """Delivery ids waiting in the channel queues (from the queued messages' args)."""
    client = redis.Redis.from_url(REDIS_URL)
    found: set[int] = set()
    try:
        for queue in CHANNEL_QUEUES:
            for value in client.hvals(f"dramatiq:{queue}.msgs"):
                found.update(json.loads(value)["args"][0])
    finally:
        client.close()
    return found


def queued_messages() -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(int(client.hlen(f"dramatiq:{q}.msgs")) for q in CHANNEL_QUEUES)
    finally:
        client.close()


def wait_routed(conn: psycopg.Connection[Any], prefix: str, n: int, timeout: float,
                check_queued: bool = False) -> float:
    """Poll (every 50 ms) until N events with the prefix are routed (or failed) and, if
    asked, every delivery id of theirs sits in a channel queue; returns that moment."""
    deadline = time.perf_counter() + timeout
    last_report = time.perf_counter()
    routed_at = None
    while True:
        routed, failed = routed_count(conn, prefix)
        now = time.perf_counter()
        if routed + failed >= n:
            if not check_queued:
                return now
            first_check = routed_at is None
            routed_at = routed_at or now
            # a delivery still pending must sit in a channel queue; one that is not
            # pending any more was handled already (the route actor delivers browser
            # items inline, skipping the queue hop)
            wanted = {r[0] for r in conn.execute(
                "SELECT d.id FROM deliveries d JOIN events e ON e.pk = d.event_pk "
                "WHERE e.event_id LIKE %s AND d.status = 'pending'", (f"{prefix}%",))}
            missing = wanted - queued_ids()
            if not missing:
                # the check itself takes a while at full size: when it passes at once,
                # the jobs were queued by the time the last event was seen routed
                return routed_at if first_check else time.perf_counter()
            if now - routed_at > 60:
                raise RuntimeError(f"{len(missing)} of {len(wanted)} deliveries were never "
                                   "enqueued (was Redis restarted?)")
        if now > deadline:
            raise RuntimeError(f"only {routed} of {n} events routed ({failed} failed) "
                               f"after {timeout:.0f}s")
        if now - last_report > 5:
            progress(f"W1:   {routed:,}/{n:,} routed")
            last_report = now
        time.sleep(0.05)


def run(sizes: Sizes, raw: dict[str, Any], profile_dir: str | None = None,
        peers: bool = True) -> list[Row]:
    n, warm = sizes.w1_events, sizes.w1_warmup
    with pg_schema("bench_w1") as schema, tmpdir("w1") as tmp:
        rules = rb.build_rules(tmp, sizes.w1_extra_rules)
        with schema.db.session() as s:
            created = tenants.create(s, "Bench W1", tenant_id="bench")
        progress(f"W1: loading {sizes.w1_employees:,} employees, "
                 f"{sizes.w1_extra_rules} extra rules ...")
        rb.directory(schema.db, "bench", sizes.w1_employees, create_tenant=False)
        dep = Deployment(tmp, schema.url, rules_path=str(rules))
        try:
            dep.start_api()
            dep.start_worker(threads=sizes.w1_threads, queues=["herald.route"])
            progress(f"W1: API + one route-only worker up; warm-up with {warm:,} events")
            with psycopg.connect(schema.url, autocommit=True) as conn:
                post_all(dep.url, created.api_key, docs("bench", warm, "w"))
                wait_routed(conn, "w", warm, 600)
                base_msgs = queued_messages()
                body = docs("bench", n, "m")
                progress(f"W1: publishing {n:,} events ({BATCH:,} per request) ...")
                before, pg_before, box_before = (dep.cpu_seconds(), pg_backend_cpu(schema.name),
                                                 machine_cpu())
                published: list[float] = []

                publisher = threading.Thread(
                    target=lambda: published.append(post_all(dep.url, created.api_key, body)))
                with profiled(profile_dir, "w1-worker", dep.pid("worker")):
                    started = time.perf_counter()
                    publisher.start()
                    done = wait_routed(conn, "m", n, 1800, check_queued=True)
                    publisher.join()
                after, pg_after, box_after = (dep.cpu_seconds(), pg_backend_cpu(schema.name),
                                              machine_cpu())
                stats = conn.execute(
                    "SELECT (SELECT count(*) FROM feed_items f JOIN events e "
                    "        ON e.pk = f.last_event_pk WHERE e.event_id LIKE 'm%'), "
                    "       (SELECT count(*) FROM deliveries d JOIN events e "
                    "        ON e.pk = d.event_pk WHERE e.event_id LIKE 'm%'), "
                    "       (SELECT count(*) FROM events WHERE event_id LIKE 'm%' "
                    "        AND status = 'failed')").fetchone()
                assert stats is not None
                channel_msgs = queued_messages() - base_msgs
        finally:
            dep.stop()
    elapsed = done - started
    rate = n / elapsed
    feed_rows, delivery_rows, failed = (int(x) for x in stats)
    rows_per_event = (feed_rows + delivery_rows) / n
    jobs_per_event = (n / 100 + channel_msgs) / n  # route jobs carry 100 events each
    t_ideal = (1 / raw["rules_assert_retract_per_s"] + rows_per_event / raw["pg_rows_per_s"]
               + jobs_per_event / raw["redis_push_per_s"])
    ideal = 1 / t_ideal
    ratio = rate / ideal
    cpu = cpu_delta(before, after, n)
    cpu["postgres"] = round((pg_after - pg_before) * 1000 / n, 3)
    busy = busy_share(box_before, box_after)
    details = {"events": n, "seconds": round(elapsed, 2),
               "publish_seconds": round(published[0] - started, 2) if published else None,
               "failed_events": failed, "feed_rows_per_event": round(feed_rows / n, 2),
               "delivery_rows_per_event": round(delivery_rows / n, 2),
               "jobs_per_event": round(jobs_per_event, 4),
               "ideal_events_per_s": round(ideal, 1), "ratio_to_ideal": round(ratio, 3),
               "cpu_ms_per_event": cpu, "machine_busy": round(busy, 3),
               "worker_threads": sizes.w1_threads,
               "rules": sizes.w1_extra_rules, "employees": sizes.w1_employees}
    progress(f"W1: {rate:,.0f} events/s ({elapsed:.1f} s for {n:,}); ideal {ideal:,.0f}/s; "
             f"CPU ms/event {cpu}; machine {busy:.0%} busy")
    raw_text = (f"ideal {ideal:,.0f} ev/s = 1/(1/{raw['rules_assert_retract_per_s']:,.0f} + "
                f"{rows_per_event:.1f} rows/{raw['pg_rows_per_s']:,.0f} + "
                f"{jobs_per_event:.3f} jobs/{raw['redis_push_per_s']:,.0f})")
    return [
        Row("W1", f"routing: {rate:,.0f} events/s", "≥ 1,000 events/s", raw_text,
            verdict(rate >= TARGET), rate, "events/s", details),
        Row("W1", f"routing vs bare composition: {ratio:.0%}", "≥ 50% of ideal", raw_text,
            verdict(ratio >= 0.5), ratio, "ratio", {}),
    ]
