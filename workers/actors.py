"""Actor bodies: reload, check status, act, record. Never hold a DB session
across network I/O; never trust a message to be the only copy."""

from __future__ import annotations

import itertools
import logging
import math
import time
from datetime import datetime
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from channels.browser import BrowserAdapter
from router.core import metrics
from router.core.config import DeliveryConfig
from router.core.enums import Channel, DeliveryStatus
from router.delivery import breaker, deliveries, digests, timers
from router.delivery.contracts import Adapter, Job, Outcome
from router.delivery.deliveries import Recorded
from router.store.models import utcnow
from workers import liveness
from workers.host import WorkerRuntime

log = logging.getLogger("herald.workers")


def route_events(runtime: WorkerRuntime, pks: list[int], bulk: bool = False,
                 tenant: str | None = None) -> None:
    """Route a batch of stored events, on the live or the bulk lane (workers.lanes); with
    `tenant`, a job the route gate let stand for that tenant's small publishes
    (workers.broker.RouteGate): it routes what the tenant has waiting."""
    lanes = runtime.route_lanes
    if tenant is not None:  # from here on, the tenant's next small publish needs a new job
        runtime.workers.route_job_started(tenant, bulk)
    if bulk:  # most of a single-event stream's jobs find their event routed by a top-up
        with runtime.db.session() as s:
            if not runtime.event_router.waiting(s, pks, tenant):
                return
    with lanes.bulk() if bulk else lanes.live():
        started = time.perf_counter()
        with runtime.db.session() as s:
            result = runtime.event_router.route(s, pks, lanes.give_way if bulk else None,
                                                tenant)
            routed = result.timed("route", started)
        result.timed("commit", routed)
    if bulk:
        lanes.give_way()
    if tenant is not None and result.full:  # more may wait than one claim takes
        runtime.workers.enqueue_route([], bulk, tenant)
    metrics.EVENTS_ROUTED.labels("routed").inc(len(result.routed))
    metrics.EVENTS_ROUTED.labels("failed").inc(len(result.failed))
    committed = time.perf_counter()
    runtime.workers.enqueue_deliveries(dict(result.start))
    for channel, due in result.later.items():  # timers (time steps, quiet hours), for then
        enqueue_later(runtime, channel, due)
    committed = result.timed("enqueue", committed)
    if result.announce:  # the live path skips a queue hop: websockets hear of it right away
        browser = runtime.adapter(Channel.BROWSER)
        assert isinstance(browser, BrowserAdapter)
        browser.announce(result.announce, BrowserHandoff(runtime))
        result.timed("announce", committed)
    log.info("route.batch", extra={"routed": len(result.routed), "failed": len(result.failed),
                                   "event_pks": pks[:20], "tenants": result.tenants,
                                   "timings_ms": result.timings_ms})


class BrowserHandoff:
    """The browser channel's way back into this worker: the adapter path now, or the queue."""

    def __init__(self, runtime: WorkerRuntime) -> None:
        self.runtime = runtime

    def deliver(self, ids: list[int]) -> None:
        for start in range(0, len(ids), 1000):
            deliver(self.runtime, Channel.BROWSER, ids[start:start + 1000])

    def enqueue(self, ids: list[int]) -> None:
        self.runtime.workers.enqueue_deliveries({Channel.BROWSER: ids})


def deliver(runtime: WorkerRuntime, channel: Channel, ids: list[int]) -> None:
    adapter = runtime.adapter(channel)
    cfg = runtime.config.delivery
    started = time.perf_counter()
    lease_end = time.monotonic() + cfg.lease_s * 0.9  # the record may be retried until then
    with runtime.db.session() as s:
        rows, gate = _claim(s, channel, ids, cfg)
        if not gate.holds_all:  # a digest is claimed whole, by its key
            rows = digests.gather(s, channel, ids, rows, cfg.lease_s, liveness.worker_id())
        later = _later(s, channel, ids, rows) if len(rows) < len(ids) else {}
        rows = _not_moot(s, rows)
        if rows:
            _observe_lag(channel, rows)
            claimed = digests.merge(deliveries.jobs_for(s, rows), rows)
            jobs, unprepared = _prepare(s, adapter, claimed)
    enqueue_later(runtime, channel, later)
    if not rows:
        return
    prepared = time.perf_counter()
    try:
        if unprepared:
            _record(runtime, adapter, [j for j in claimed if j.id in unprepared], unprepared,
                    lease_end)
        _send_all(runtime, adapter, jobs, lease_end)
    finally:
        adapter.close()
    log.info("deliver.batch", extra={
        "channel": str(channel), "deliveries": len(jobs), "delivery_ids": [j.id for j in jobs][:20],
        "breaker": "probe" if gate.open else "closed", "prepare_s": round(prepared - started, 3),
        "send_and_record_s": round(time.perf_counter() - prepared, 3)})


def _prepare(s: Session, adapter: Adapter, jobs: list[Job]
             ) -> tuple[list[Job], dict[int, Outcome]]:
    """Prepare the batch; if that fails (not the database: that retries the message), each
    job alone, so one malformed delivery fails by itself instead of sinking its batch."""
    try:
        adapter.prepare(s, jobs)
        return jobs, {}
    except (OperationalError, InterfaceError):
        raise
    except Exception:  # noqa: BLE001 - found below, job by job
        log.warning("deliver.prepare_failed", extra={"channel": str(adapter.channel),
                                                     "deliveries": len(jobs)}, exc_info=True)
    good: list[Job] = []
    bad: dict[int, Outcome] = {}
    for job in jobs:
        try:
            adapter.prepare(s, [job])
            good.append(job)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:  # noqa: BLE001 - this delivery's own data is broken
            bad[job.id] = Outcome.failed(f"could not prepare this delivery: "
                                         f"{type(exc).__name__}: {exc}")
    return good, bad


def _claim(s: Session, channel: Channel, ids: list[int],
           cfg: DeliveryConfig) -> tuple[list[Any], breaker.Gate]:
    """Claim the due deliveries the channel's breaker lets through; hold the rest."""
    gate = breaker.gate(s, channel, cfg)
    if gate.allowed == 0 and gate.until is not None:
        metrics.HELD.labels(channel).inc(len(deliveries.defer(s, ids, channel, gate.until)))
        return [], gate
    rows = deliveries.claim(s, ids, channel, cfg.lease_s, liveness.worker_id())
    if gate.open and len(rows) > (gate.allowed or 0):
        _hold(s, channel, [r.id for r in rows[gate.allowed:]], gate)
        rows = rows[:gate.allowed]
    return rows, gate


def _not_moot(s: Session, rows: list[Any]) -> list[Any]:
    """Claimed escalations whose feed item was read meanwhile are skipped, not sent."""
    moot = timers.moot_escalations(s, rows)
    if not moot:
        return rows
    timers.skip(s, moot, DeliveryStatus.SENDING)
    return [r for r in rows if r.id not in moot]


def _hold(s: Session, channel: Channel, ids: list[int], gate: breaker.Gate) -> None:
    assert gate.until is not None
    held = deliveries.hold(s, ids, gate.until, f"held: the {channel} breaker is open until "
                           f"{gate.until.isoformat(timespec='seconds')} (no attempt spent)")
    metrics.HELD.labels(channel).inc(len(held))


def _later(s: Session, channel: Channel, ids: list[int], claimed: list[Any]
           ) -> dict[int, datetime]:
    """The deliveries of this message that wait for a later time (a retry's message that
    came early, a breaker hold): each gets a message for then, or only the sweeper finds it."""
    taken = {r.id for r in claimed}
    return {i: due for i, due in deliveries.waiting(s, ids, channel).items() if i not in taken}


def enqueue_later(runtime: WorkerRuntime, channel: Channel, due: dict[int, datetime]) -> None:
    """Enqueue each delivery for its due time (rounded up to the next 100 ms)."""
    now = utcnow()
    by_delay: dict[float, list[int]] = {}
    for did, at in due.items():
        delay = math.ceil(max(0.0, (at - now).total_seconds()) * 10) / 10
        by_delay.setdefault(delay, []).append(did)
    for delay, ids in by_delay.items():
        runtime.workers.enqueue_deliveries({channel: ids}, delay_s=delay)


def _send_all(runtime: WorkerRuntime, adapter: Adapter, jobs: list[Job], lease_end: float) -> None:
    deadline = time.monotonic() + runtime.config.delivery.lease_s / 2
    for start in range(0, len(jobs), adapter.record_every):
        chunk = jobs[start:start + adapter.record_every]
        if time.monotonic() > deadline:  # stay inside the claim's lease
            _record(runtime, adapter, chunk, {j.id: Outcome.retry(
                "not attempted: the batch ran out of time") for j in chunk}, lease_end)
            continue
        with metrics.DELIVERY_SECONDS.labels(adapter.channel).time():
            outcomes = adapter.send(chunk)
        gate = _record(runtime, adapter, chunk, outcomes, lease_end)
        rest = [j.id for j in jobs[start + adapter.record_every:]]
        if gate.open and rest:  # the breaker opened on this chunk: the rest waits
            with runtime.db.session() as s:
                _hold(s, adapter.channel, rest, gate)
            enqueue_later(runtime, adapter.channel, dict.fromkeys(rest, gate.until or utcnow()))
            return


def _record(runtime: WorkerRuntime, adapter: Adapter, jobs: list[Job],
            outcomes: dict[int, Outcome], lease_end: float) -> breaker.Gate:
    """Commit a chunk's outcomes at once: this bounds what a crash can make us re-send.
    The sends happened: if the commit fails (a dropped connection), the record is retried
    with backoff while the claim's lease keeps the sweeper away, never the sends."""
    for attempt in itertools.count():
        try:
            return _record_once(runtime, adapter, jobs, outcomes)
        except (OperationalError, InterfaceError):  # the connection, not the data
            pause = min(0.1 * 2 ** attempt, 5.0)
            if time.monotonic() + pause > lease_end:
                log.error("deliver.record_lost", extra={
                    "channel": str(adapter.channel), "delivery_ids": list(outcomes)[:20],
                    "attempts": attempt + 1}, exc_info=True)
                raise
            log.warning("deliver.record_retry", extra={
                "channel": str(adapter.channel), "deliveries": len(outcomes),
                "attempt": attempt + 1, "pause_s": pause}, exc_info=True)
            time.sleep(pause)
    raise AssertionError("unreachable")


def _record_once(runtime: WorkerRuntime, adapter: Adapter, jobs: list[Job],
                 outcomes: dict[int, Outcome]) -> breaker.Gate:
    cfg = runtime.config.delivery
    with runtime.db.session() as s:
        adapter.after(s, jobs, outcomes)
        each = digests.expand(jobs, outcomes)  # a digest's outcome is each member's
        todo = deliveries.record(s, each, cfg, liveness.worker_id())
        gate = breaker.observe(s, adapter.channel, outcomes.values(), cfg)  # one per message
    for outcome in each.values():
        metrics.DELIVERIES.labels(adapter.channel, outcome.status).inc()
    metrics.RETRIES.labels(adapter.channel).inc(sum(len(v) for v in todo.retry.values()))
    follow_up(runtime, todo)
    return gate


def _observe_lag(channel: Channel, rows: list) -> None:  # type: ignore[type-arg]
    now = utcnow()
    for row in rows:
        due = row.next_attempt_at or row.created_at
        late = max(0.0, (now - due).total_seconds())
        metrics.QUEUE_LAG.labels(channel).observe(late)
        kind = timers.timer_kind(row.content)
        if kind and row.attempts == 1:  # a timer falling due, not a retry of one
            metrics.TIMERS_RELEASED.labels(channel, kind).inc()
            metrics.TIMER_LATENESS.labels(channel).observe(late)


def follow_up(runtime: WorkerRuntime, todo: Recorded) -> None:
    workers = runtime.workers
    for delay, ids in todo.retry.items():
        by_channel = _channels_of(runtime, ids)
        workers.enqueue_deliveries(by_channel, delay_s=delay)
    workers.enqueue_deliveries(todo.next_steps)
    for channel, due in todo.later.items():  # a later step waiting for quiet hours to end
        enqueue_later(runtime, channel, due)
    if todo.await_ack:
        workers.enqueue_expiry(todo.await_ack)


def _channels_of(runtime: WorkerRuntime, ids: list[int]) -> dict[Channel, list[int]]:
    with runtime.db.session() as s:
        return deliveries.channels_of(s, ids)


def expire_unacked(runtime: WorkerRuntime, ids: list[int]) -> None:
    with runtime.db.session() as s:
        todo = deliveries.expire_unacked(s, ids, runtime.config.delivery)
    follow_up(runtime, todo)


def sweep(runtime: WorkerRuntime) -> deliveries.Stale:
    with runtime.db.session() as s:
        stale = deliveries.sweep(s, runtime.config.delivery)
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
