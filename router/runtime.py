"""The runtime: one object owning config, database, rules, texts, live fan-out
and the broker of a Herald process (API, worker, or both in embedded mode)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from router.config import Settings, get_settings
from router.db import Database
from router.limits import Limiter
from router.live import Hub, Live
from router.pipeline import Router
from router.rulesync import RuleSync
from router.texts import TextCatalogue

if TYPE_CHECKING:
    from workers.broker import Workers

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
    def __init__(self, settings: Settings, *, hub: Hub | None = None) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        # the rule set version in force in the database (embedded: the files, deployed)
        self.rules = RuleSync(self.db, settings.rules_path, deploy_files=self.embedded)
        self.engine = self.rules.engine
        self.texts = TextCatalogue()
        self.hub = hub
        self.live = Live(settings.pubsub_url, hub)
        self.router = Router(self.engine, self.texts, settings.links,
                             batch=settings.delivery.route_batch, online=self.live.online)
        # route jobs run at most this many at a time per process: more only split the
        # waiting events into smaller (costlier) batches and contend for the GIL
        self.route_slots = threading.BoundedSemaphore(settings.delivery.route_concurrency)
        self.key_cache = TtlCache(ttl_s=30.0, size=1024)  # API key -> tenant (keys rotate rarely)
        self.limiter = Limiter(settings.api.publish_rate_per_s, settings.api.publish_burst,
                               settings.pubsub_url, settings.api.redis_timeout_s)
        # set by the API app when no workers run here: the broker then only enqueues, and
        # gets the publish path's short Redis timeouts (consumers block on Redis for longer)
        self.publish_only = False
        self._workers: Workers | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kw: object) -> Runtime:
        return cls(settings or get_settings(), **kw)  # type: ignore[arg-type]

    @property
    def embedded(self) -> bool:
        return not self.settings.broker_url

    @property
    def workers(self) -> Workers:
        """The broker and actors (created on first use, so rules load errors come first)."""
        if self._workers is None:
            from workers.broker import Workers

            self._workers = Workers(self)
        return self._workers

    def follow_rules(self) -> threading.Thread:
        """Swap to each newly deployed version within a second or so (DESIGN §9)."""
        return self.rules.start()

    def close(self) -> None:
        self.rules.stop()
        if self._workers is not None:
            self._workers.close()
        self.db.dispose()
