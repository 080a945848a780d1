"""What the actors need from the process that runs them (the runtime satisfies it),
so ``workers`` never imports ``router.runtime``: the runtime wires the workers, not
the other way round."""

from __future__ import annotations

from typing import Protocol

from router.core.config import Config
from router.core.enums import Channel, Queue
from router.delivery.contracts import Adapter
from router.delivery.live import Live
from router.routing.pipeline import EventRouter
from router.store.db import Database
from workers.lanes import RouteLanes


class Enqueuer(Protocol):
    """The broker side the actors use: enqueue work, read a queue's depth."""

    def enqueue_route(self, pks: list[int], bulk: bool = False, tenant: str | None = None
                      ) -> None: ...

    def route_job_started(self, tenant: str, bulk: bool) -> None: ...

    def enqueue_deliveries(self, by_channel: dict[Channel, list[int]], delay_s: float = 0) -> None: ...

    def enqueue_expiry(self, ids: list[int]) -> None: ...

    def queue_depth(self, channel: Channel | Queue) -> int: ...


class WorkerRuntime(Protocol):
    config: Config
    db: Database
    live: Live
    event_router: EventRouter
    route_lanes: RouteLanes
    publish_only: bool

    @property
    def workers(self) -> Enqueuer: ...

    def adapter(self, channel: Channel) -> Adapter: ...
