"""Live fan-out of feed items to websocket sessions, across API replicas.

Workers call :meth:`Live.publish` with a batch of entries; each API process
runs one :class:`Hub` that holds its open sessions and receives every batch,
through Redis pub/sub (production) or directly in-process (embedded mode).
Pub/sub is fire-and-forget: the feed rows in SQL stay the truth and a
reconnecting client replays from its last seen seq.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aredis

log = logging.getLogger("herald.live")
CHANNEL = "herald:live"
CHUNK = 500  # entries per pub/sub message


Key = tuple[str, str, str]  # tenant, receiver kind, receiver id
Sender = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(eq=False)
class Session:
    key: Key
    send: Sender
    pending_acks: dict[int, int] = field(default_factory=dict)  # feed item id -> delivery id


class Hub:
    """The websocket sessions of this process, by receiver."""

    def __init__(self) -> None:
        self.sessions: dict[Key, set[Session]] = defaultdict(set)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def add(self, session: Session) -> None:
        self.sessions[session.key].add(session)

    def remove(self, session: Session) -> None:
        group = self.sessions.get(session.key)
        if group is not None:
            group.discard(session)
            if not group:
                del self.sessions[session.key]

    def count(self, key: Key) -> int:
        return len(self.sessions.get(key, ()))

    @property
    def connections(self) -> int:
        return sum(len(v) for v in self.sessions.values())

    async def dispatch(self, entries: list[dict[str, Any]]) -> None:
        sends = []
        for entry in entries:
            key = (entry["tenant"], entry["kind"], entry["id"])
            for session in list(self.sessions.get(key, ())):
                if entry.get("delivery"):
                    session.pending_acks[entry["item"]["id"]] = entry["delivery"]
                sends.append(self._send(session, {"type": "item", "item": entry["item"],
                                                  "unread": entry["unread"]}))
        if sends:
            await asyncio.gather(*sends)

    async def _send(self, session: Session, message: dict[str, Any]) -> None:
        try:
            await session.send(message)
        except Exception:  # noqa: BLE001 - a closed socket: its handler cleans up
            self.remove(session)

    def dispatch_threadsafe(self, entries: list[dict[str, Any]]) -> None:
        if self.loop is not None and not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.dispatch(entries), self.loop)

    async def start(self, redis_url: str) -> None:
        self.loop = asyncio.get_running_loop()
        if redis_url:
            self._task = asyncio.create_task(self._listen(redis_url))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass

    async def _listen(self, redis_url: str) -> None:
        while True:
            try:
                await self._listen_once(redis_url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect to Redis after any failure
                log.warning("live.redis_reconnect", extra={"error": str(exc)})
                await asyncio.sleep(1.0)

    async def _listen_once(self, redis_url: str) -> None:
        client = aredis.from_url(redis_url)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self.dispatch(json.loads(message["data"]))
        finally:
            await client.aclose()  # type: ignore[attr-defined]


class Live:
    """The publishing side, used by the browser adapter in any process."""

    def __init__(self, redis_url: str, hub: Hub | None = None) -> None:
        self.redis_url = redis_url
        self.hub = hub
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def _redis(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                self._client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
            return self._client

    def publish(self, entries: list[dict[str, Any]]) -> None:
        if not self.redis_url:
            if self.hub is not None:
                self.hub.dispatch_threadsafe(entries)
            return
        pipe = self._redis().pipeline(transaction=False)
        for start in range(0, len(entries), CHUNK):
            pipe.publish(CHANNEL, json.dumps(entries[start:start + CHUNK]))
        pipe.execute()
