"""Prometheus metrics (prometheus-client), multiprocess-safe.

`herald serve` and `herald worker` point PROMETHEUS_MULTIPROC_DIR at one folder
before anything imports prometheus_client, so API replicas and worker
processes on a host add up in one `/metrics` answer.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DIR = ".herald-metrics"


def prepare_multiprocess(folder: str | None = None) -> str:
    """Point prometheus_client at a shared folder; runs on import, before the metrics."""
    path = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", folder or DEFAULT_DIR)
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


prepare_multiprocess()

from prometheus_client import (  # noqa: E402 - after the multiprocess switch above
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

EVENTS_ROUTED = Counter("herald_events_routed_total", "Events routed", ["status"])
ACTOR_SECONDS = Histogram("herald_actor_seconds", "Time a worker spent on one message, by "
                          "actor (route_events, deliver_<channel>, ...) and outcome",
                          ["actor", "outcome"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
DELIVERY_SECONDS = Histogram("herald_delivery_seconds", "Adapter send time per chunk (the "
                             "provider's share of a deliver actor's time)", ["channel"],
                             buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
DELIVERIES = Counter("herald_deliveries_total", "Delivery outcomes", ["channel", "status"])
RETRIES = Counter("herald_delivery_retries_total", "Delivery attempts scheduled again",
                  ["channel"])
QUEUE_LAG = Histogram("herald_queue_lag_seconds", "From due to claimed, per delivery",
                      ["channel"], buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300))
WEBSOCKETS = Gauge("herald_websocket_connections", "Open websocket sessions",
                   multiprocess_mode="livesum")
BREAKER_OPEN = Gauge("herald_breaker_open", "1 while a channel's circuit breaker holds its "
                     "deliveries (open or half-open), as last seen by a live worker",
                     ["channel"], multiprocess_mode="livemax")
BREAKER_CHANGES = Counter("herald_breaker_transitions_total", "Circuit breaker state changes",
                          ["channel", "state"])
HELD = Counter("herald_deliveries_held_total", "Deliveries held by an open breaker (no attempt "
               "spent)", ["channel"])
CLAIMS_RELEASED = Counter("herald_claims_released_total", "Deliveries released from a worker "
                          "that stopped beating", ["channel"])
LOST_REQUEUED = Counter("herald_lost_messages_requeued_total", "Pending deliveries enqueued "
                        "again because their message was lost", ["channel"])
TIMERS_PENDING = Gauge("herald_timers_pending", "Deliveries waiting for a due time (delays, "
                       "escalations, digests, quiet hours, retries), as last counted by a live "
                       "worker", multiprocess_mode="livemax")
TIMERS_RELEASED = Counter("herald_timers_released_total", "Timed deliveries claimed when due, "
                          "by what held them", ["channel", "kind"])
TIMER_LATENESS = Histogram("herald_timer_lateness_seconds", "From a timed delivery's due time "
                           "to its claim", ["channel"],
                           buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300))
PUBLISH_GROUP = Histogram("herald_publish_group_events", "Events stored by one publish "
                          "transaction (concurrent single publishes share one: group commit)",
                          buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))


def render() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
