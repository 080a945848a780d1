"""Actor bodies: reload, check status, act, record. Never hold a DB session
across network I/O; never trust a message to be the only copy."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from channels.base import Adapter, Job, Outcome
from channels.registry import adapter_for
from router import deliveries, feed, metrics
from router.deliveries import Recorded
from router.enums import Channel, OutcomeStatus
from router.models import utcnow

if TYPE_CHECKING:
    from router.runtime import Runtime

log = logging.getLogger("herald.workers")


def route_events(runtime: Runtime, pks: list[int]) -> None:
    with runtime.route_slots:
        started = time.perf_counter()
        with metrics.ROUTING_SECONDS.time(), runtime.db.session() as s:
            result = runtime.router.route(s, pks)
            routed = result.timed("route", started)
        result.timed("commit", routed)
    metrics.EVENTS_ROUTED.labels("routed").inc(len(result.routed))
    metrics.EVENTS_ROUTED.labels("failed").inc(len(result.failed))
    start = dict(result.start)
    browser = start.pop(Channel.BROWSER, [])
    committed = time.perf_counter()
    runtime.workers.enqueue_deliveries(start)
    committed = result.timed("enqueue", committed)
    if result.live:
        publish_live(runtime, result.live, result.written_at)
        committed = result.timed("live", committed)
    if result.settled:
        metrics.DELIVERIES.labels(Channel.BROWSER, OutcomeStatus.SENT).inc(len(result.settled))
        publish_late(runtime, result.settled)
        committed = result.timed("late", committed)
    if browser:  # the live path skips a queue hop: publish to websockets right away
        deliver_inline(runtime, Channel.BROWSER, browser)
        result.timed("inline", committed)
    log.info("route.batch", extra={"routed": len(result.routed), "failed": len(result.failed),
                                   "event_pks": pks[:20], "tenants": result.tenants,
                                   "timings_ms": result.timings_ms})


def publish_live(runtime: Runtime, entries: dict[int, dict[str, Any]],
                 written_at: float) -> None:
    """Browser deliveries under `all`, straight after the route commit: publish the live
    messages the router built, then move the rows pending -> sent in one guarded UPDATE.
    If publishing fails they stay pending and go through the queue (retries, backoff)."""
    ids = list(entries)
    started = time.perf_counter()
    lag = metrics.QUEUE_LAG.labels(Channel.BROWSER)
    waited = max(0.0, time.time() - written_at)
    for _ in ids:
        lag.observe(waited)
    try:
        runtime.live.publish(list(entries.values()))
    except Exception:  # noqa: BLE001 - the queued path retries with backoff
        log.warning("deliver.live_publish_failed", extra={"deliveries": len(ids)},
                    exc_info=True)
        runtime.workers.enqueue_deliveries({Channel.BROWSER: ids})
        return
    published = time.perf_counter()
    try:
        with runtime.db.session() as s:
            sent = deliveries.mark_sent(s, ids, "published live")
    except Exception:  # noqa: BLE001 - the rows stay pending: the sweeper sends them again
        log.warning("deliver.live_record_failed", extra={"deliveries": len(ids)},
                    exc_info=True)
        return
    metrics.DELIVERIES.labels(Channel.BROWSER, OutcomeStatus.SENT).inc(sent)
    log.info("deliver.live", extra={
        "channel": str(Channel.BROWSER), "deliveries": len(ids), "delivery_ids": ids[:20],
        "sent": sent, "publish_s": round(published - started, 3),
        "record_s": round(time.perf_counter() - published, 3)})


def publish_late(runtime: Runtime, settled: list[feed.LiveTarget]) -> None:
    """Receivers who had no open session when their batch was routed, asked again after
    the commit: a session opened meanwhile may have read the feed before the commit, so
    it gets the live message now. (Their deliveries were settled at routing and have no
    row; the targets are keyed by feed item.)"""
    online = runtime.live.online((t.tenant, t.receiver_kind, t.receiver_id) for t in settled)
    late = [t for t in settled if (t.tenant, t.receiver_kind, t.receiver_id) in (online or ())]
    if not late:
        return
    try:
        with runtime.db.session() as s:
            entries = feed.live_entries(s, late)
        runtime.live.publish(list(entries.values()))
    except Exception:  # noqa: BLE001 - the feed row is the record; the client replays it
        log.warning("deliver.late_publish_failed", extra={"deliveries": len(late)},
                    exc_info=True)
    log.info("deliver.late", extra={"channel": str(Channel.BROWSER), "deliveries": len(late)})


def deliver_inline(runtime: Runtime, channel: Channel, ids: list[int]) -> None:
    """Deliver now in this thread; on failure the rows stay pending for a queued retry."""
    try:
        for start in range(0, len(ids), 1000):
            deliver(runtime, channel, ids[start:start + 1000])
    except Exception:  # noqa: BLE001 - the queue takes over; nothing is lost
        log.warning("deliver.inline_failed", extra={"channel": str(channel)}, exc_info=True)
        runtime.workers.enqueue_deliveries({channel: ids})


def deliver(runtime: Runtime, channel: Channel, ids: list[int]) -> None:
    adapter = adapter_for(runtime, channel)
    started = time.perf_counter()
    with runtime.db.session() as s:
        rows = deliveries.claim(s, ids, channel, runtime.settings.delivery.lease_s)
        if not rows:
            return
        _observe_lag(channel, rows)
        jobs = deliveries.jobs_for(s, rows)
        adapter.prepare(s, jobs)
    prepared = time.perf_counter()
    deadline = time.monotonic() + runtime.settings.delivery.lease_s / 2
    try:
        for start in range(0, len(jobs), adapter.record_every):
            chunk = jobs[start:start + adapter.record_every]
            if time.monotonic() > deadline:  # stay inside the claim's lease
                _record(runtime, adapter, chunk, {j.id: Outcome.retry(
                    "not attempted: the batch ran out of time") for j in chunk})
                continue
            with metrics.DELIVERY_SECONDS.labels(channel).time():
                outcomes = adapter.send(chunk)
            _record(runtime, adapter, chunk, outcomes)
    finally:
        adapter.close()
    log.info("deliver.batch", extra={
        "channel": str(channel), "deliveries": len(jobs), "delivery_ids": [j.id for j in jobs][:20],
        "prepare_s": round(prepared - started, 3),
        "send_and_record_s": round(time.perf_counter() - prepared, 3)})


def _record(runtime: Runtime, adapter: Adapter, jobs: list[Job],
            outcomes: dict[int, Outcome]) -> None:
    """Commit a chunk's outcomes at once: this bounds what a crash can make us re-send."""
    with runtime.db.session() as s:
        adapter.after(s, jobs, outcomes)
        todo = deliveries.record(s, outcomes, runtime.settings.delivery)
    for outcome in outcomes.values():
        metrics.DELIVERIES.labels(adapter.channel, outcome.status).inc()
    metrics.RETRIES.labels(adapter.channel).inc(sum(len(v) for v in todo.retry.values()))
    follow_up(runtime, todo)


def _observe_lag(channel: Channel, rows: list) -> None:  # type: ignore[type-arg]
    now = utcnow()
    for row in rows:
        due = row.next_attempt_at or row.created_at
        metrics.QUEUE_LAG.labels(channel).observe(max(0.0, (now - due).total_seconds()))


def follow_up(runtime: Runtime, todo: Recorded) -> None:
    workers = runtime.workers
    for delay, ids in todo.retry.items():
        by_channel = _channels_of(runtime, ids)
        workers.enqueue_deliveries(by_channel, delay_s=delay)
    workers.enqueue_deliveries(todo.next_steps)
    if todo.await_ack:
        workers.enqueue_expiry(todo.await_ack)


def _channels_of(runtime: Runtime, ids: list[int]) -> dict[Channel, list[int]]:
    from sqlalchemy import select

    from router import models as m
    from router.db import one_of

    with runtime.db.session() as s:
        rows = s.execute(select(m.Delivery.id, m.Delivery.channel)
                         .where(one_of(s, m.Delivery.id, ids))).all()
    found: dict[Channel, list[int]] = {}
    for did, channel in rows:
        found.setdefault(Channel(channel), []).append(did)
    return found


def expire_unacked(runtime: Runtime, ids: list[int]) -> None:
    with runtime.db.session() as s:
        todo = deliveries.expire_unacked(s, ids, runtime.settings.delivery)
    follow_up(runtime, todo)


def sweep(runtime: Runtime) -> deliveries.Stale:
    with runtime.db.session() as s:
        stale = deliveries.sweep(s, runtime.settings.delivery)
    if stale.events:
        runtime.workers.enqueue_route(stale.events)
    runtime.workers.enqueue_deliveries(stale.pending)
    if stale.unacked:
        expire_unacked(runtime, stale.unacked)
    if stale.events or stale.pending or stale.unacked:
        log.warning("sweep.recovered", extra={
            "events": len(stale.events), "unacked": len(stale.unacked),
            "deliveries": sum(len(v) for v in stale.pending.values())})
    return stale
