"""What a worker process does every few seconds besides its actors: beat its heartbeat,
release the claims of workers that stopped beating, and re-enqueue deliveries whose
message was lost. The full sweep (expired leases, old pending rows) runs less often."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from functools import cache

from router.core import metrics
from router.core.enums import Channel, Queue
from router.delivery import deliveries, timers
from router.store import heartbeats
from workers.host import WorkerRuntime

log = logging.getLogger("herald.workers")


@cache
def _instance() -> str:
    return uuid.uuid4().hex[:8]


def worker_id() -> str:
    """This process's name on its claims and heartbeat (host, pid, and a random part)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{_instance()}"


COUNT_EVERY_S = 15.0  # how often a worker counts the pending timers for /metrics (a scrape interval)
_counted = [0.0]


def beat(runtime: WorkerRuntime) -> None:
    with runtime.db.session() as s:
        known = heartbeats.beat(s, worker_id())
        if time.monotonic() - _counted[0] >= COUNT_EVERY_S:
            _counted[0] = time.monotonic()
            metrics.TIMERS_PENDING.set(timers.pending_timers(s))
    if not known:
        log.info("worker.heartbeat_started", extra={"worker": worker_id()})


def release_dead(runtime: WorkerRuntime) -> dict[Channel, list[int]]:
    """Return the claims of every worker that stopped beating to pending and enqueue them."""
    released: dict[Channel, list[int]] = {}
    with runtime.db.session() as s:
        for dead in heartbeats.take_dead(s, runtime.config.delivery.dead_after_s):
            found = deliveries.release_claims(s, dead)
            log.warning("worker.dead", extra={
                "worker": dead, "released": sum(len(v) for v in found.values())})
            for channel, ids in found.items():
                released.setdefault(channel, []).extend(ids)
                metrics.CLAIMS_RELEASED.labels(channel).inc(len(ids))
    runtime.workers.enqueue_deliveries(released)
    return released


def requeue_lost(runtime: WorkerRuntime) -> dict[Channel, list[int]]:
    """Due deliveries nobody claimed for a while, on a queue with nothing waiting: their
    message was lost (or consumed too early). A live worker's claims are never touched."""
    idle = [c for c in Channel if runtime.workers.queue_depth(c) == 0]
    with runtime.db.session() as s:
        lost = deliveries.lost_messages(s, idle, runtime.config.delivery.lost_after_s)
    if lost:
        runtime.workers.enqueue_deliveries(lost)
        for channel, ids in lost.items():
            metrics.LOST_REQUEUED.labels(channel).inc(len(ids))
        log.warning("deliver.lost_requeued", extra={
            "deliveries": sum(len(v) for v in lost.values()),
            "delivery_ids": [i for ids in lost.values() for i in ids][:20]})
    return lost


def requeue_lost_events(runtime: WorkerRuntime) -> list[int]:
    """Events whose route message was lost (e.g. a publish whose enqueue timed out while
    Redis stalled) are routed within seconds instead of waiting for the full sweep."""
    if any(runtime.workers.queue_depth(q) != 0 for q in (Queue.ROUTE, Queue.ROUTE_BULK)):
        return []  # a backlog (or an unknown depth) is not a loss
    with runtime.db.session() as s:
        lost = deliveries.lost_events(s, runtime.config.delivery.lost_after_s)
    if lost:
        runtime.workers.enqueue_route(lost)
        log.warning("route.lost_requeued", extra={"events": len(lost), "event_pks": lost[:20]})
    return lost


def leave(runtime: WorkerRuntime) -> None:
    with runtime.db.session() as s:
        heartbeats.leave(s, worker_id())
