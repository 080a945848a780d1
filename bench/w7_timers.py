"""W7 timers (#15): 100,000 durable timers falling due over 60 s with live traffic beside
them; release lateness p50/p99 (goal p99 ≤ 1 s) and the live publish -> websocket
latency with and without the timer load.

One `herald serve` and one `herald worker` (8 threads, every queue: the timers and the
live path share the process, as in a deployment) on a bench schema, email sent to a
counting SMTP sink in a child process (bench/sinks.py). Email, because Herald only ever
holds push and email rows (docs/rules.md "Time": the browser step is never held), and
the sink is local, so no provider's latency is in the figure; what is in it is Herald's
whole release path (delayed message -> claim -> render -> SMTP -> record).

1. Baseline: the W3 live probe (bench/live_bench.py: ``w7_clients`` websockets,
   ``ticket.created`` events POSTed at ``w7_rate``/s on a fixed schedule, each timed from
   just before its POST to its item frame) for ``w7_baseline_seconds``, no timers.
2. Timers: ``w7_timers`` pending email deliveries of one stored event are INSERTed in one
   statement (generate_series), each with ``content.timer`` (a `delay`, so the worker
   counts it as a timer) and ``next_attempt_at`` spread evenly over ``w7_seconds``,
   the first due ``LEAD_S`` after the insert starts. Their ids are then enqueued exactly
   as the route actor enqueues held rows (``workers.actors.enqueue_later``: one
   Dramatiq delayed message per due time rounded up to 100 ms and batch of 100), which is
   what releases a timer on time; the lost-message pass (due + 10 s, queue empty) and
   the sweep are the worker's fallbacks and stay on as deployed (the sweep's interval is
   the bench's usual hour).
3. Loaded: from the first due time, the same live probe for ``w7_seconds`` while the
   timers fall due; then the bench waits until every timer is sent (or a deadline).

Lateness is read from the database afterwards: a timer's claim time (its "sending: attempt
1" history line, what ``herald_timer_lateness_seconds`` measures) minus its due time; the
time it was recorded sent is reported beside it. The worker's own histogram and
counters (read from the deployment's prometheus multiprocess files) go into the details.
The load generator's CPU (this process: the websocket clients and the POSTs) is reported
as a share of one core per phase, and so is the SMTP sink's.
"""

from __future__ import annotations

import asyncio
import time
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import update

from bench import live_bench, w5_channels
from bench.common import (
    REDIS_URL,
    Deployment,
    Row,
    Sizes,
    busy_share,
    machine_cpu,
    pg_backend_cpu,
    pg_schema,
    profiled,
    progress,
    quantile,
    tmpdir,
    verdict,
)
from bench.sinks import smtp_sink
from router.core.config import load_config
from router.core.enums import Channel, EventStatus
from router.core.security import mint_user_token
from router.directory import tenants
from router.routing.events import Event
from router.routing.pipeline import publish
from router.store import models as m

GOAL_P99_S = 1.0
LEAD_S = 5.0  # from the start of the INSERT to the first due time (smoke: 3 s)
RECEIVERS = 1000  # distinct timer receivers (t0 ... t999)
FROM = "Herald <herald@bench.localhost>"

INSERT = """
INSERT INTO deliveries (tenant_id, event_pk, receiver_kind, receiver_id, channel, status,
                        strategy, step, chain, feed_item_id, content, attempts,
                        next_attempt_at, created_at, updated_at)
SELECT %(tenant)s::text, %(event_pk)s::bigint, 'employee', 't' || (g %% %(receivers)s::int),
       'email', 'pending', 'all', 0, '[]'::jsonb, NULL,
       jsonb_build_object(
           'language', 'en', 'title', 'Reminder: ticket #1042',
           'message', 'Ticket #1042 “Elevator 3 stuck between floors” is still open.',
           'link', 'https://app.example.com/tickets/T-1042',
           'email', 't' || (g %% %(receivers)s::int) || '@bench.example',
           'name', 'Timer user ' || (g %% %(receivers)s::int), 'created_at', %(now_iso)s::text,
           'timer', jsonb_build_object(
               'kind', 'delay', 'after_s', %(after_s)s::int, 'cancel_on', '[]'::jsonb,
               'due', to_char(due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
                      || '+00:00')),
       0, due, %(now)s::timestamptz, %(now)s::timestamptz
FROM (SELECT g, %(first)s::timestamptz + g * %(step)s::float8 * interval '1 second' AS due
      FROM generate_series(0, %(n)s::int - 1) AS g) AS timers
ORDER BY g
RETURNING id, next_attempt_at
"""

TIMES = """
SELECT delivery_id, min(at) FILTER (WHERE status = 'sending'),
       min(at) FILTER (WHERE status = 'sent')
FROM delivery_log WHERE delivery_id BETWEEN %s AND %s GROUP BY delivery_id
"""


def _event(tenant: str) -> dict[str, Any]:
    return {"id": "timer-1", "type": "ticket.created", "tenant": tenant,
            "actor": {"id": "c1", "name": "Carla Customer"},
            "subject": {"kind": "ticket", "id": "T-1042", "number": "#1042"},
            "data": {"title": "Elevator 3 stuck between floors"}}


def stored_event(schema: Any, tenant: str) -> int:
    """One stored event for the timers to belong to, marked routed (the lost-event pass
    must not route it while the bench runs)."""
    with schema.db.session() as s:
        [stored] = publish(s, tenant, [Event.model_validate(_event(tenant))])
        s.execute(update(m.EventRow).where(m.EventRow.pk == stored.pk)
                  .values(status=EventStatus.ROUTED, attempts=1))
        return int(stored.pk)


def insert_timers(url: str, tenant: str, event_pk: int, n: int, seconds: float,
                  lead_s: float) -> tuple[dict[int, datetime], float]:
    """N pending email deliveries due evenly over SECONDS from LEAD_S from now; returns
    {id: due} and how long the INSERT took."""
    now = datetime.now(UTC)
    first = now + timedelta(seconds=lead_s)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(INSERT, {
            "tenant": tenant, "event_pk": event_pk, "receivers": RECEIVERS,
            "now_iso": now.isoformat(), "now": now, "after_s": int(lead_s + seconds),
            "first": first, "step": seconds / n, "n": n}).fetchall()
    return {int(i): due for i, due in rows}, time.perf_counter() - started


def claim_times(url: str, ids: list[int]) -> dict[int, tuple[datetime | None, datetime | None]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {int(r[0]): (r[1], r[2]) for r in conn.execute(TIMES, (min(ids), max(ids)))}


def wait_released(url: str, ids: list[int], deadline_s: float) -> tuple[float, dict[str, int]]:
    """Poll until every timer is sent or failed (or the deadline passes); returns when and
    the final counts by status."""
    deadline = time.perf_counter() + deadline_s
    last_note = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            counts = {str(st): int(c) for st, c in conn.execute(
                "SELECT status, count(*) FROM deliveries WHERE id BETWEEN %s AND %s "
                "GROUP BY status", (min(ids), max(ids)))}
            done = counts.get("sent", 0) + counts.get("failed", 0) + counts.get("skipped", 0)
            now = time.perf_counter()
            if done >= len(ids) or now > deadline:
                return now, counts
            if now - last_note >= 15:
                last_note = now
                progress(f"W7:   draining: {counts}")
            time.sleep(0.25)


def worker_metrics(folder: Path) -> dict[str, Any]:
    """The worker's timer figures, from the deployment's prometheus multiprocess files."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    if not folder.is_dir():
        return {}
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    found: dict[str, Any] = {"timer_lateness_buckets": {}, "timers_released": 0.0,
                             "lost_requeued": 0.0}
    for family in registry.collect():
        for sample in family.samples:
            if sample.labels.get("channel") not in (None, "email"):
                continue
            if sample.name == "herald_timer_lateness_seconds_bucket":
                found["timer_lateness_buckets"][sample.labels["le"]] = sample.value
            elif sample.name == "herald_timer_lateness_seconds_count":
                found["timer_lateness_count"] = sample.value
            elif sample.name == "herald_timer_lateness_seconds_sum":
                found["timer_lateness_sum_s"] = round(sample.value, 1)
            elif sample.name == "herald_timers_released_total":
                found["timers_released"] += sample.value
            elif sample.name == "herald_lost_messages_requeued_total":
                found["lost_requeued"] += sample.value
    return found


def _probe(urls: list[str], key: str, tokens: list[str], args: Namespace
           ) -> dict[str, Any]:
    """One live probe: latencies, and this process's CPU share meanwhile."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result, elapsed = asyncio.run(live_bench.measure(urls, key, tokens, args))
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    lat = sorted((result.received[k] - t) * 1000 for k, t in result.sent.items()
                 if k in result.received)
    return {"sent": len(result.sent), "received": len(lat), "lost": len(result.sent) - len(lat),
            "failed_posts": result.failed_posts, "seconds": round(elapsed, 2),
            "achieved_rate": round(len(result.sent) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(quantile(lat, 0.5), 1), "p90_ms": round(quantile(lat, 0.9), 1),
            "p99_ms": round(quantile(lat, 0.99), 1),
            "max_ms": round(max(lat), 1) if lat else None,
            "post_p99_ms": round(quantile(result.post_ms, 0.99), 1),
            "generator_cpu_share": round(cpu / wall, 3) if wall else 0.0}


def _cpu_of(pid: int) -> float:
    import os

    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def run(sizes: Sizes, raw: dict[str, Any], profile_dir: str | None = None,
        peers: bool = True) -> list[Row]:
    from router.runtime import Runtime
    from workers import actors

    n, seconds = sizes.w7_timers, sizes.w7_seconds
    lead = 3.0 if sizes.smoke else LEAD_S
    live = Namespace(rate=sizes.w7_rate, seconds=sizes.w7_baseline_seconds,
                     clients=sizes.w7_clients, replicas=1, worker_threads=8, first=0)
    loaded = Namespace(**{**vars(live), "seconds": seconds, "first": 1_000_000})
    warm = Namespace(**{**vars(live), "seconds": 1.0 if sizes.smoke else 3.0,
                        "first": 10_000_000})
    drain_s = 60.0 if sizes.smoke else max(600.0, 10 * seconds)
    with smtp_sink() as sink, pg_schema("bench_w7") as schema, tmpdir("w7") as tmp:
        raw_n = 200 if sizes.smoke else 2000
        raw_rate = w5_channels.raw_smtplib(sink.host, sink.port, raw_n, w5_channels.render(
            w5_channels.sample_job("bench")).data)
        progress(f"W7: raw smtplib to the same sink, one connection: {raw_rate:,.0f} mails/s")
        smtp = {"host": sink.host, "port": sink.port, "from_addr": FROM}
        dep = Deployment(tmp, schema.url, smtp=smtp)
        runtime = Runtime(load_config(database_url=schema.url, broker_url=REDIS_URL, smtp=smtp))
        try:
            urls = live_bench.start(dep, 1, live.worker_threads)
            with schema.db.session() as s:
                created = tenants.create(s, "Bench W7", tenant_id="bench")
            live_bench.seed(urls[0], created.api_key, live.clients)
            tokens = [mint_user_token(created.signing_secret, created.tenant_id, f"u{i}",
                                      timedelta(hours=1)) for i in range(live.clients)]
            event_pk = stored_event(schema, "bench")
            progress(f"W7: warm-up {warm.seconds:g} s at {live.rate:g} events/s, "
                     f"{live.clients} websockets")
            _probe(urls, created.api_key, tokens, warm)
            progress(f"W7: baseline live probe, no timers: {live.seconds:g} s")
            base = _probe(urls, created.api_key, tokens, live)
            progress(f"W7:   baseline p50 {base['p50_ms']} ms, p99 {base['p99_ms']} ms")

            progress(f"W7: inserting {n:,} email timers due over {seconds:g} s "
                     f"(first due in {lead:g} s)")
            due, insert_s = insert_timers(schema.url, "bench", event_pk, n, seconds, lead)
            t_enq = time.perf_counter()
            actors.enqueue_later(runtime, Channel.EMAIL, due)  # as the route actor does
            enqueue_s = time.perf_counter() - t_enq
            first_due, last_due = min(due.values()), max(due.values())
            ahead = (first_due - datetime.now(UTC)).total_seconds()
            progress(f"W7:   INSERT {insert_s:.1f} s, enqueue {enqueue_s:.1f} s; first due "
                     f"in {ahead:.1f} s")
            if ahead > 0:
                time.sleep(ahead)
            before = (dep.cpu_seconds(), pg_backend_cpu(schema.name), machine_cpu(),
                      _cpu_of(sink.pid), time.perf_counter())
            with profiled(profile_dir, "w7-worker", dep.pid("worker")):
                progress(f"W7: timers falling due; live probe for {seconds:g} s beside them")
                with_timers = _probe(urls, created.api_key, tokens, loaded)
                window = (dep.cpu_seconds(), pg_backend_cpu(schema.name), machine_cpu(),
                          _cpu_of(sink.pid), time.perf_counter())
                progress(f"W7:   with timers p50 {with_timers['p50_ms']} ms, p99 "
                         f"{with_timers['p99_ms']} ms; waiting for the timers to drain")
                done_at, counts = wait_released(schema.url, list(due), drain_s)
            after = (dep.cpu_seconds(), pg_backend_cpu(schema.name), machine_cpu(),
                     _cpu_of(sink.pid), time.perf_counter())
            times = claim_times(schema.url, list(due))
            metrics = worker_metrics(tmp / "metrics")
            mails = sink.count - raw_n
        finally:
            runtime.close()
            dep.stop()
    return _rows(sizes, due, times, counts, base, with_timers, metrics, mails,
                 {"insert_s": round(insert_s, 2), "enqueue_s": round(enqueue_s, 2),
                  "first_due_ahead_s": round(ahead, 2), "drained_s_after_first_due":
                  round(done_at - before[4], 1), "raw_smtplib_per_s": round(raw_rate, 1)},
                 before, window, after, first_due, last_due)


def _cpu_block(a: tuple[Any, ...], b: tuple[Any, ...]) -> dict[str, Any]:
    wall = b[4] - a[4]
    share = {name: round((b[0][name] - a[0].get(name, 0.0)) / wall, 3) for name in b[0]}
    share["postgres_backends"] = round((b[1] - a[1]) / wall, 3)
    share["smtp_sink"] = round((b[3] - a[3]) / wall, 3)
    return {"seconds": round(wall, 1), "cpu_share_of_one_core": share,
            "machine_busy": round(busy_share(a[2], b[2]), 3)}


def _rows(sizes: Sizes, due: dict[int, datetime],
          times: dict[int, tuple[datetime | None, datetime | None]], counts: dict[str, int],
          base: dict[str, Any], loaded: dict[str, Any], metrics: dict[str, Any], mails: int,
          setup: dict[str, Any], before: tuple[Any, ...], window: tuple[Any, ...],
          after: tuple[Any, ...], first_due: datetime, last_due: datetime) -> list[Row]:
    n, seconds = len(due), sizes.w7_seconds
    claimed = {i: t[0] for i, t in times.items() if t[0] is not None}
    sent = {i: t[1] for i, t in times.items() if t[1] is not None}
    late = sorted((at - due[i]).total_seconds() for i, at in claimed.items())
    late_sent = sorted((at - due[i]).total_seconds() for i, at in sent.items())
    early = sum(1 for x in late if x < 0)
    p50, p99 = quantile(late, 0.5), quantile(late, 0.99)
    unreleased = n - len(claimed)
    in_window = sum(1 for at in claimed.values() if at <= last_due)
    on_time = sum(1 for x in late if x <= GOAL_P99_S)
    last_claim = max(claimed.values()) if claimed else last_due
    release_span = (last_claim - first_due).total_seconds()
    due_rate = n / seconds
    window_rate = in_window / seconds
    overall_rate = len(claimed) / release_span if release_span > 0 else 0.0
    # the least p99 lateness possible if every mail went out at the raw smtplib rate of this
    # run (one connection to the same sink) from the first due time on: timer i is due at
    # i / due_rate and cannot be sent before i / raw
    raw = setup["raw_smtplib_per_s"]
    floor_p99 = max(0.0, 0.99 * n * (1 / raw - 1 / due_rate)) if raw else float("nan")
    ratio_p99 = loaded["p99_ms"] / base["p99_ms"] if base["p99_ms"] else float("nan")
    ratio_p50 = loaded["p50_ms"] / base["p50_ms"] if base["p50_ms"] else float("nan")
    details = {
        "timers": n, "seconds": seconds, "due_rate_per_s": round(due_rate, 1),
        "channel": "email -> local aiosmtpd sink (child process)",
        "released": len(claimed), "unreleased": unreleased, "released_early": early,
        "released_by_window_end": in_window, "released_within_1s_of_due": on_time,
        "final_status_counts": counts, "mails_at_sink": mails,
        "lateness_s": {"p50": round(p50, 3), "p90": round(quantile(late, 0.9), 3),
                       "p99": round(p99, 3), "max": round(late[-1], 3) if late else None},
        "due_to_sent_s": {"p50": round(quantile(late_sent, 0.5), 3),
                          "p99": round(quantile(late_sent, 0.99), 3),
                          "max": round(late_sent[-1], 3) if late_sent else None},
        "release_rate_per_s": {"in_window": round(window_rate, 1),
                               "first_due_to_last_claim": round(overall_rate, 1),
                               "span_s": round(release_span, 1)},
        "lateness_floor_p99_s_at_raw_smtplib": round(floor_p99, 1),
        "worker_metrics": metrics, **setup,
        "cpu_window": _cpu_block(before, window), "cpu_window_and_drain": _cpu_block(before,
                                                                                      after),
        "live_without_timers": base, "live_with_timers": loaded,
        "live_rate": sizes.w7_rate, "live_clients": sizes.w7_clients,
    }
    progress(f"W7: {len(claimed):,}/{n:,} timers released ({in_window:,} by the window's end, "
             f"{on_time:,} within 1 s); lateness p50 {p50:.2f} s, p99 {p99:.2f} s; release "
             f"{window_rate:,.0f}/s in the window vs {due_rate:,.0f}/s due")
    progress(f"W7: live p99 {base['p99_ms']} ms without timers, {loaded['p99_ms']} ms with "
             f"(×{ratio_p99:.1f}); generator CPU {loaded['generator_cpu_share']:.0%} of a core")
    suffix = f", {unreleased:,} never released" if unreleased else ""
    live_ok = not (base["lost"] or loaded["lost"] or base["failed_posts"]
                   or loaded["failed_posts"])
    live_note = "" if live_ok else (f" (lost {base['lost']}/{loaded['lost']}, failed POSTs "
                                    f"{base['failed_posts']}/{loaded['failed_posts']})")
    return [
        Row("W7", f"timer lateness p99: {p99:.2f} s (p50 {p50:.2f} s), {len(claimed):,}/{n:,} "
                  f"released{suffix}", f"p99 ≤ {GOAL_P99_S:g} s", "-",
            verdict(unreleased == 0 and p99 <= GOAL_P99_S), p99, "s", details),
        Row("W7", f"lateness floor at raw smtplib ({raw:,.0f} mails/s, this run): p99 "
                  f"{floor_p99:.1f} s; measured ×{p99 / floor_p99 if floor_p99 else float('inf'):.2f}",
            f"{due_rate:,.0f} mails/s due", f"smtplib {raw:,.0f}/s", "info", floor_p99, "s", {}),
        Row("W7", f"timer release: {window_rate:,.0f}/s in the window vs {due_rate:,.0f}/s due "
                  f"({in_window:,} by its end)", f"{due_rate:,.0f}/s (keep up)", "-", "info",
            window_rate, "timers/s", {}),
        Row("W7", f"live p99 with timers: {loaded['p99_ms']:.1f} ms vs {base['p99_ms']:.1f} ms "
                  f"without (×{ratio_p99:.1f}; p50 {loaded['p50_ms']:.1f} vs "
                  f"{base['p50_ms']:.1f}){live_note}", f"{sizes.w7_rate:g} ev/s, "
                  f"{sizes.w7_clients} sockets", "-", "info", loaded["p99_ms"], "ms",
            {"p99_ratio": round(ratio_p99, 2), "p50_ratio": round(ratio_p50, 2)}),
        Row("W7", f"load generator CPU: {loaded['generator_cpu_share']:.0%} of a core with "
                  f"timers ({base['generator_cpu_share']:.0%} without)", "-", "-", "info",
            loaded["generator_cpu_share"], "share", {}),
    ]
