"""Live fan-out of feed items to websocket sessions, across API replicas.

Workers call :meth:`Live.publish` with a batch of entries; each API process
runs one :class:`Hub` that holds its open sessions and receives every batch,
through Redis pub/sub (production) or directly in-process (embedded mode).
Changes made through the API (read, read-all, a code's clear-notifications) send
ready ``unread`` frames (``router.delivery.frames``) the same way with :meth:`Live.tell`,
after their commit, on a second channel; a failed tell never fails the request.
Pub/sub is fire-and-forget: the feed rows in SQL stay the truth and a
reconnecting client replays from its last seen seq.

Presence: after a route batch commits, the browser channel (``channels/browser.py``,
``announce``) asks :meth:`Live.online` once which of its receivers have an open session
and publishes live messages only to those; the others' browser deliveries (strategy
``all``) stay settled at routing (the feed item is the record). Nothing asks presence
inside a transaction. Each API process keeps the set of its receivers in Redis
(``herald:presence:<replica>``, refreshed every ``PRESENCE_REFRESH_S`` with a TTL of
``PRESENCE_TTL_S``, so a crashed replica's set expires) and scores itself in
``herald:replicas``. A session joins the set *before* its hello reads the database, and
presence is asked only after the commit, so a client that connects meanwhile either gets
the live message or sees the item in its first read. When presence cannot be told (Redis
down), every receiver counts as online: the old publish-to-all path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

import redis
import redis.asyncio as aredis

from router.delivery import frames

log = logging.getLogger("herald.live")
CHANNEL = "herald:live"  # item entries from the workers (LiveEntry lists)
FRAMES = "herald:live:frames"  # ready frames for receivers (Addressed lists): reads, clears
CHUNK = 500  # entries per pub/sub message
REPLICAS = "herald:replicas"  # sorted set: API replica id -> last presence refresh (unix s)
PRESENCE = "herald:presence:"  # + replica id: set of "tenant\x1fkind\x1fid" with a session
PRESENCE_REFRESH_S = 10.0
PRESENCE_TTL_S = 30.0
CLOSE_TIMEOUT_S = 2.0  # redis-py's asyncio close can stall (redis/redis-py#3941): never wait longer


Key = tuple[str, str, str]  # tenant, receiver kind, receiver id
Sender = Callable[[dict[str, Any]], Awaitable[None]]


class Addressed(TypedDict):
    """A frame for every open session of one receiver."""

    tenant: str
    kind: str
    id: str
    frame: frames.Unread | frames.Item


@dataclass(eq=False)
class Session:
    key: Key
    send: Sender
    pending_acks: dict[int, int] = field(default_factory=dict)  # feed item id -> delivery id


def member(key: Key) -> str:
    return "\x1f".join(key)


async def _bounded(*closing: Awaitable[Any]) -> None:
    """Await each close for at most CLOSE_TIMEOUT_S; a stalled or failing close is let go
    (the socket dies with the process, a presence set with its TTL)."""
    for step in closing:
        try:
            await asyncio.wait_for(step, CLOSE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - shutting down: nothing left to protect
            log.debug("live.close_failed", extra={"error": repr(exc)})


class Board:
    """This replica's presence set in Redis (the writing side of presence).

    Its writes run one at a time, in the order they were asked for: a leave sent on a
    pooled connection must not overtake the refresh that re-asserted the receiver on a
    connection still being opened, or the receiver would stay online after it left."""

    def __init__(self, redis_url: str, replica: str) -> None:
        self.client = aredis.from_url(redis_url, socket_timeout=2)
        self.replica = replica
        self.key = PRESENCE + replica
        self._order = asyncio.Lock()  # FIFO: writes reach Redis in the order of the calls

    async def join(self, key: Key) -> None:
        async with self._order:
            pipe = self.client.pipeline(transaction=False)
            pipe.sadd(self.key, member(key))
            pipe.expire(self.key, int(PRESENCE_TTL_S))
            pipe.zadd(REPLICAS, {self.replica: time.time()})
            await pipe.execute()

    async def leave(self, key: Key) -> None:
        async with self._order:
            await self.client.srem(self.key, member(key))

    async def refresh(self, current: Callable[[], Iterable[Key]]) -> None:
        """Re-assert every receiver (the set may have expired or Redis restarted) and
        drop members whose sessions are gone (a failed leave). Nothing is deleted
        wholesale: a join running meanwhile must not be wiped out."""
        async with self._order:
            pipe = self.client.pipeline(transaction=False)
            members = [member(k) for k in current()]
            if members:
                pipe.sadd(self.key, *members)
            pipe.expire(self.key, int(PRESENCE_TTL_S))
            pipe.zadd(REPLICAS, {self.replica: time.time()})
            pipe.zremrangebyscore(REPLICAS, "-inf", time.time() - 10 * PRESENCE_TTL_S)
            pipe.smembers(self.key)
            stored = (await pipe.execute())[-1]
            stale = {m.decode() for m in stored} - {member(k) for k in current()}
            if stale:
                await self.client.srem(self.key, *stale)

    async def close(self) -> None:
        async def withdraw() -> None:
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(self.key)
            pipe.zrem(REPLICAS, self.replica)
            await pipe.execute()

        await _bounded(withdraw(), self.client.aclose())  # type: ignore[attr-defined]


class Hub:
    """The websocket sessions of this process, by receiver."""

    def __init__(self) -> None:
        self.sessions: dict[Key, set[Session]] = defaultdict(set)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.replica = uuid.uuid4().hex
        self.board: Board | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def join(self, session: Session) -> None:
        """Add a session and, for a receiver's first, announce it before returning."""
        first = session.key not in self.sessions
        self.sessions[session.key].add(session)
        if first and self.board is not None:
            try:
                await self.board.join(session.key)
            except Exception as exc:  # noqa: BLE001 - presence is re-asserted by the refresh
                log.warning("live.presence_failed", extra={"error": str(exc)})

    async def leave(self, session: Session) -> None:
        self.remove(session)
        if session.key not in self.sessions and self.board is not None:
            try:
                await self.board.leave(session.key)
            except Exception as exc:  # noqa: BLE001 - the refresh rewrites the whole set
                log.warning("live.presence_failed", extra={"error": str(exc)})

    def remove(self, session: Session) -> None:
        group = self.sessions.get(session.key)
        if group is not None:
            group.discard(session)
            if not group:
                del self.sessions[session.key]

    def online(self, keys: Iterable[Key]) -> set[Key]:
        return {k for k in keys if k in self.sessions}

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
                item: frames.Item = {"type": "item", "item": entry["item"],
                                     "unread": entry["unread"]}
                if "unseen" in entry:  # only where it differs from unread (frames.py)
                    item["unseen"] = entry["unseen"]
                sends.append(self._send(session, dict(item)))
        if sends:
            await asyncio.gather(*sends)

    async def dispatch_frames(self, addressed: list[Addressed]) -> None:
        sends = [self._send(session, dict(one["frame"])) for one in addressed
                 for session in list(self.sessions.get((one["tenant"], one["kind"], one["id"]),
                                                       ()))]
        if sends:
            await asyncio.gather(*sends)

    async def _send(self, session: Session, message: dict[str, Any]) -> None:
        try:
            await session.send(message)
        except Exception:  # noqa: BLE001 - a closed socket: its handler cleans up
            self.remove(session)

    def dispatch_threadsafe(self, entries: Sequence[Mapping[str, Any]],
                            channel: str = CHANNEL) -> None:
        if self.loop is not None and not self.loop.is_closed():
            step = (self.dispatch_frames(cast(list[Addressed], entries)) if channel == FRAMES
                    else self.dispatch(cast(list[dict[str, Any]], entries)))
            asyncio.run_coroutine_threadsafe(step, self.loop)

    async def start(self, redis_url: str) -> None:
        self.loop = asyncio.get_running_loop()
        if redis_url:
            self.board = Board(redis_url, self.replica)
            self._tasks = [asyncio.create_task(self._listen(redis_url)),
                           asyncio.create_task(self._refresh_loop())]

    async def stop(self) -> None:
        """Stop listening and withdraw this replica's presence, in bounded time."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2 * CLOSE_TIMEOUT_S)
        if self.board is not None:
            await self.board.close()

    async def _refresh_loop(self) -> None:
        assert self.board is not None
        while True:
            try:
                await self.board.refresh(lambda: list(self.sessions))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - try again at the next refresh
                log.warning("live.presence_failed", extra={"error": str(exc)})
            await asyncio.sleep(PRESENCE_REFRESH_S)

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
        client = aredis.from_url(redis_url, socket_connect_timeout=2)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(CHANNEL, FRAMES)
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                if message["channel"] == FRAMES.encode():
                    await self.dispatch_frames(json.loads(message["data"]))
                else:
                    await self.dispatch(json.loads(message["data"]))
        finally:
            await _bounded(pubsub.aclose(), client.aclose())  # type: ignore[attr-defined]


class Live:
    """The publishing side, used by the browser adapter in any process."""

    def __init__(self, redis_url: str, hub: Hub | None = None) -> None:
        self.redis_url = redis_url
        self.hub = hub
        self._client: redis.Redis[bytes] | None = None
        self._lock = threading.Lock()

    def _redis(self) -> redis.Redis[bytes]:
        with self._lock:
            if self._client is None:
                self._client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
            return self._client

    def close(self) -> None:
        """Close the Redis connection (a later call opens a new one)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def online(self, keys: Iterable[Key]) -> set[Key] | None:
        """Which of these receivers have an open websocket session on some replica;
        None when that cannot be told (every receiver then counts as online)."""
        keys = list(dict.fromkeys(keys))
        if not self.redis_url:
            return self.hub.online(keys) if self.hub is not None else None
        if not keys:
            return set()
        try:
            client = self._redis()
            replicas = client.zrangebyscore(REPLICAS, time.time() - PRESENCE_TTL_S, "+inf")
            pipe = client.pipeline(transaction=False)
            members = [member(k) for k in keys]
            for replica in replicas:
                pipe.smismember(PRESENCE + replica.decode(), members)  # type: ignore[no-untyped-call]
            found: set[Key] = set()
            for flags in pipe.execute():
                found.update(k for k, hit in zip(keys, flags, strict=True) if hit)
            return found
        except redis.RedisError as exc:
            log.warning("live.presence_unknown", extra={"error": str(exc)})
            return None

    def publish(self, entries: Sequence[Mapping[str, Any]], channel: str = CHANNEL) -> None:
        if not self.redis_url:
            if self.hub is not None:
                self.hub.dispatch_threadsafe(entries, channel)
            return
        pipe = self._redis().pipeline(transaction=False)
        for start in range(0, len(entries), CHUNK):
            pipe.publish(channel, json.dumps(entries[start:start + CHUNK]))
        pipe.execute()

    def tell(self, addressed: list[Addressed]) -> bool:
        """Send frames to every open session of their receivers, on every replica, after
        the change was committed. Never raises: the change stands without the frame
        (sessions catch up at their next item or reconnect)."""
        if not addressed:
            return True
        try:
            self.publish(addressed, FRAMES)
            return True
        except redis.RedisError as exc:
            log.warning("live.tell_failed", extra={"receivers": len(addressed),
                                                   "error": str(exc)})
            return False
