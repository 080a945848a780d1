"""The composition root: one object owning config, database, rules, texts, live
fan-out, the channel adapters and the broker of a Herald process (API, worker, or
both in embedded mode). Nothing below it imports it: channels get a ChannelContext,
workers a WorkerRuntime (workers/host.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from router.core.config import Config, get_config
from router.core.enums import Channel
from router.core.limits import Limiter
from router.delivery.contracts import Adapter, ChannelContext, EventOptions
from router.delivery.live import Hub, Live
from router.routing.pipeline import EventRouter
from router.routing.texts import TextCatalogue
from router.ruleset.rulesync import RuleSync
from router.store.db import Database
from workers.lanes import RouteLanes

if TYPE_CHECKING:
    from workers.broker import Sweeper, Workers

log = logging.getLogger("herald.runtime")


class TtlCache:
    """A small thread-safe cache whose entries expire after ttl_s (e.g. API key -> tenant)."""

    def __init__(self, ttl_s: float, size: int) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._items: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, value: str) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl_s, value)


class Runtime:
    def __init__(self, config: Config, *, hub: Hub | None = None) -> None:
        self.config = config
        self.db = Database(config.database_url)
        # the rule set version in force in the database (embedded: the files, deployed)
        self.rules = RuleSync(self.db, config.rules_path, deploy_files=self.embedded)
        self.engine = self.rules.engine
        self.texts = TextCatalogue()
        self.hub = hub
        self.live = Live(config.pubsub_url, hub)
        self.event_router = EventRouter(self.engine, self.texts, config.links,
                                        batch=config.delivery.route_batch)
        # route jobs run at most this many at a time per process: more only split the
        # waiting events into smaller (costlier) batches and contend for the GIL
        # (per lane: a bursting tenant's backlog never holds a quiet tenant's slots)
        self.route_lanes = RouteLanes(config.delivery.route_concurrency)
        self.key_cache = TtlCache(ttl_s=30.0, size=1024)  # API key -> tenant (keys rotate rarely)
        self.limiter = Limiter(config.api.publish_rate_per_s, config.api.publish_burst,
                               config.pubsub_url, config.api.redis_timeout_s,
                               config.api.bulk_lane_window_s)
        # set by the API app when no workers run here: the broker then only enqueues, and
        # gets the publish path's short Redis timeouts (consumers block on Redis for longer)
        self.publish_only = False
        self._workers: Workers | None = None
        self.channel_context = ChannelContext(config, self.live, self.db, self._event_options)
        self._adapters: dict[Channel, Adapter] = {}

    @classmethod
    def from_config(cls, config: Config | None = None, **kw: object) -> Runtime:
        return cls(config or get_config(), **kw)  # type: ignore[arg-type]

    @property
    def embedded(self) -> bool:
        return not self.config.broker_url

    @property
    def workers(self) -> Workers:
        """The broker and actors (created on first use, so rules load errors come first)."""
        if self._workers is None:
            from workers.broker import Workers

            self._workers = Workers(self)
        return self._workers

    def start_workers(self, threads: int, queues: Iterable[str] | None = None) -> Sweeper:
        """Run the actors and the sweeper in this process; stop the sweeper returned."""
        from workers.broker import Sweeper

        self.workers.start(threads=threads, queues=queues)
        sweeper = Sweeper(self)
        sweeper.start()
        return sweeper

    def adapter(self, channel: Channel) -> Adapter:
        """This runtime's adapter for a channel (one instance per runtime and channel)."""
        if channel not in self._adapters:
            from channels.registry import ADAPTERS

            self._adapters[channel] = ADAPTERS[channel](self.channel_context)
        return self._adapters[channel]

    def _event_options(self, event_type: str) -> EventOptions | None:
        return self.engine.ruleset.events.get(event_type)

    def follow_rules(self) -> threading.Thread:
        """Swap to each newly deployed version within a second or so (DESIGN §9)."""
        return self.rules.start()

    def close(self) -> None:
        self.rules.stop()
        if self._workers is not None:
            self._workers.close()
        self.live.close()
        self.limiter.close()
        self.db.dispose()
