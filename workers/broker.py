"""Broker set-up and actor declaration, bound to one runtime (a WorkerRuntime).

Actors take ids, never database objects. They are declared per broker (not at
import time), so the embedded in-process broker and the Redis broker can never
be mixed up by import order.

Queues: ``herald.route`` (batches of event pks; ``herald.route.bulk`` for a tenant
publishing in bulk: fair lanes), ``herald.browser|push|email``
(batches of delivery ids, one generic deliver actor per channel queue) and
``herald.control`` (ack expiry, sweeps, snoozed items' wake-ups).
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import compute_backoff, current_millis, join_all
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, TimeLimit

from router.core.enums import CHANNEL_QUEUES, Channel, Queue
from router.core.limits import publish_path_redis
from workers import actors, liveness, snooze
from workers.host import WorkerRuntime
from workers.middleware import ActorContext

log = logging.getLogger("herald.workers")
ROUTE_BATCH = 100
GATED_UP_TO = 10  # a publish of at most this many events may join a tenant's queued route job
GATE_TTL_MS = 5_000  # a gate whose job was lost opens again after this
MAINTENANCE_PER_MILLION = 50_000
# Dramatiq's worker threads take the prefetched message of the lowest priority first: a
# backlog of due emails and pushes (a digest hour, quiet hours ending) never queues ahead
# of routing and the live browser path inside a process
LIVE, CONTROL, BULK, BACKGROUND = 0, 5, 7, 10
REDIS_PY_SOCKET_TIMEOUT_S = 5.0  # a redis.Redis made without socket_timeout (redis-py 8)
LOCAL_POLL_MS = 500  # worker threads' idle wait (in-process queues); the embedded broker's poll
# a consumer holding all it may: its wait for an ack (a capped one holds a few messages,
# each maybe a quick job: 10 ms held W3's bulk lane to ~250 single-event jobs/s)
AT_PREFETCH_LIMIT_S, AT_CAP_S = 0.01, 0.002
WAKE = "herald:wake:"  # + queue name: a one-element list that wakes an idle consumer


def make_broker(url: str, timeout_s: float | None = None) -> dramatiq.Broker:
    """The in-process broker, or Redis; with timeout_s, a broker that only enqueues
    (an API replica) and gives up on Redis after that long."""
    middleware = [AgeLimit(), TimeLimit(time_limit=300_000), Callbacks(), Pipelines(),
                  Retries(max_retries=10, min_backoff=1000, max_backoff=300_000),
                  ActorContext()]
    if not url:
        return StubBroker(middleware=middleware)
    connection: dict[str, Any] = {"url": url}
    if timeout_s is not None:
        connection = {"client": publish_path_redis(url, timeout_s)}
    # maintenance recovers a SIGKILLed worker's unacked messages; the chance is per million
    # commands: 5% here (Dramatiq's default 0.1% left messages stranded for minutes)
    return WakingRedisBroker(
        middleware=middleware, maintenance_chance=MAINTENANCE_PER_MILLION,
        heartbeat_timeout=15_000, dead_message_ttl=7 * 86_400_000, **connection)


class WakingRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, whose idle consumers are woken by an enqueue: an idle
    consumer waits out its backoff in a BLPOP on the queue's one-element wake list, which
    every immediate enqueue pushes to, instead of sleeping it (docs/decisions.md, "Idle
    consumers are woken by the enqueue"; the private consumer subclass: "The Redis
    consumer subclass stays, pinned")."""

    idle_ms: int | None = None  # an idle consumer's longest wait (None: the worker timeout)
    stop_key = f"herald:stop:{uuid.uuid4().hex}"  # this process's consumers: return now

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self._waiting: dict[int, redis.Redis[Any]] = {}  # idle waits' clients, by wait length
        self._waiting_lock = threading.Lock()
        # queue -> most messages its consumer holds at once (Dramatiq: 2 x threads for all)
        self.prefetch_caps: dict[str, int] = {}

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _WakingConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> _RedisConsumer:
        """The bulk lane holds hardly more messages than it has route slots: a held message
        blocks its worker thread on the slots, and threads are what a quiet tenant's route
        job needs (fair lanes)."""
        cap = self.prefetch_caps.get(queue_name)
        return _WakingConsumer(self, queue_name, min(prefetch, cap) if cap else prefetch,
                               timeout)

    def waiting_client(self, longest_ms: int) -> redis.Redis[Any]:
        """The client an idle consumer blocks on: the broker's own when its socket timeout
        outlasts the wait, else one (per wait length, shared by the consumers) whose socket
        timeout does; enqueues keep the broker's shorter timeout."""
        if longest_ms <= _blocking_cap_ms(self.client):
            return self.client
        with self._waiting_lock:  # consumer threads start side by side
            if longest_ms not in self._waiting:
                pool = self.client.connection_pool
                settings = {**pool.connection_kwargs, "socket_timeout": longest_ms / 1000 + 2.0}
                self._waiting[longest_ms] = redis.Redis(connection_pool=redis.ConnectionPool(
                    connection_class=pool.connection_class, **settings))
            return self._waiting[longest_ms]

    def close(self) -> None:
        with self._waiting_lock:
            clients, self._waiting = list(self._waiting.values()), {}
        for client in clients:
            client.close()
        super().close()

    def release_consumers(self, count: int) -> None:
        """Make this process's waiting consumers return at once (a stopping worker)."""
        if count:
            pipe = self.client.pipeline(transaction=False)
            pipe.lpush(self.stop_key, *([1] * count))
            pipe.expire(self.stop_key, 60)
            pipe.execute()

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        queued = super().enqueue(message, delay=delay)
        self.wake(queued.queue_name)  # a delayed message wakes its `.DQ` consumer
        return queued

    def wake(self, queue_name: str) -> None:
        key = WAKE + queue_name
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(key, 1)
        pipe.ltrim(key, 0, 0)
        pipe.execute()


class _WakingConsumer(_RedisConsumer):
    """Waits for work in a BLPOP on the queue's wake list, up to the idle backoff, but
    never past the eta of a delayed message it handed out: Dramatiq's consumer thread moves
    due delayed messages only between two of our answers, so a long idle wait must end
    when the next one falls due (the timers of docs/rules.md "Time")."""

    def __init__(self, broker: WakingRedisBroker, queue_name: str, prefetch: int,
                 timeout: int) -> None:
        # the base never sleeps: we wait
        super().__init__(broker, queue_name, prefetch, 0)  # type: ignore[no-untyped-call]
        self.idle_ms = max(1, broker.idle_ms or timeout)
        self.idle_misses = 0
        self.wake_key = WAKE + queue_name
        self.stop_key = broker.stop_key
        self.etas: list[int] = []  # ms: delayed messages handed out, not yet due when seen
        self.handled_until = 0  # ms: the consumer thread moved what was due by then
        # a BLPOP must answer before its client's socket timeout (redis-py 8: 5 s unless set),
        # or the read times out and Dramatiq restarts the consumer with a CRITICAL log
        self.waits = broker.waiting_client(self.idle_ms)
        self.wait_cap_ms = _blocking_cap_ms(self.waits)
        self.capped = queue_name in broker.prefetch_caps

    def __next__(self) -> Any:
        cached = len(self.message_cache)
        message = super().__next__()  # type: ignore[no-untyped-call]
        if message is not None:
            self.idle_misses = 0
            if cached == 0 and self.message_cache:  # a fetch found more: maybe more still
                self.broker.wake(self.queue_name)  # another idle process may share them
            eta = message.options.get("eta")
            if isinstance(eta, int | float):
                heapq.heappush(self.etas, int(eta))
            self.handled_until = current_millis()
            return message
        if self.outstanding_message_count >= self.prefetch:
            # every message it may hold is still being worked on: the next fetch is due as
            # soon as one is acked, which our consumer thread does between two answers, so
            # a wait on the wake list here would only stall a backlog (no Redis call)
            time.sleep(AT_CAP_S if self.capped else AT_PREFETCH_LIMIT_S)
            return None
        self.idle_misses, backoff_ms = compute_backoff(self.idle_misses, max_backoff=self.idle_ms)
        wait_ms = min(self._until_due(backoff_ms), self.wait_cap_ms)
        try:  # BLPOP's timeout 0 would block for good: never below 1 ms
            self.waits.blpop([self.wake_key, self.stop_key], timeout=max(wait_ms, 1) / 1000)
        except redis.TimeoutError:
            pass  # a slow answer ends the wait like an empty one: the next fetch asks again
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        self.handled_until = current_millis()  # the thread moves what is due after we return
        return None

    def _until_due(self, backoff_ms: int) -> int:
        while self.etas and self.etas[0] <= self.handled_until:
            heapq.heappop(self.etas)
        if not self.etas:
            return backoff_ms
        return min(backoff_ms, self.etas[0] - current_millis())


def with_lanes(queues: Iterable[str]) -> set[str]:
    """The queues a worker consumes: the route queue brings its bulk lane along, so a
    route-only worker (`--queues herald.route`) routes every tenant's events."""
    chosen = set(queues)
    if str(Queue.ROUTE) in chosen:
        chosen.add(str(Queue.ROUTE_BULK))
    return chosen


def _blocking_cap_ms(client: redis.Redis[Any]) -> int:
    """The longest BLPOP this client can wait for: its socket timeout less a second (read
    from the pool's settings, without connecting; 5 s is redis-py 8's default)."""
    timeout = client.connection_pool.connection_kwargs.get("socket_timeout", REDIS_PY_SOCKET_TIMEOUT_S)
    if not timeout:
        return 60_000
    return max(100, int((float(timeout) - 1.0) * 1000))


class RouteGate:
    """At most one queued route job per tenant and lane for small publishes.

    A publish of a few events enqueues a route job only if it sets the tenant's gate key
    (SET NX, after its commit); a job clears the key before its claim (a top-up of the
    tenant's waiting events, router.routing.pipeline). A publish that finds the key set
    was committed before the job that set it clears it, so that job's claim sees its
    events: a stream of single publishes makes a few route jobs of many events, not one
    job per event (docs/decisions.md, "Small publishes share a queued route job"). A job
    that claims a whole batch asks for the next (``RouteResult.full``). Without Redis (the
    in-process broker) every publish enqueues its own job."""

    def __init__(self, client: redis.Redis[Any] | None) -> None:
        self.client = client

    def open(self, tenant: str, bulk: bool) -> bool:
        """Whether the caller should enqueue a job (no job of this lane is waiting)."""
        if self.client is None:
            return True
        return bool(self.client.set(self._key(tenant, bulk), b"1", nx=True, px=GATE_TTL_MS))

    def close(self, tenant: str, bulk: bool) -> None:
        if self.client is not None:
            self.client.delete(self._key(tenant, bulk))

    @staticmethod
    def _key(tenant: str, bulk: bool) -> str:
        return f"herald:route-gate:{Queue.ROUTE_BULK if bulk else Queue.ROUTE}:{tenant}"


class Workers:
    """The broker plus the actors, and helpers that enqueue work in batches."""

    def __init__(self, runtime: WorkerRuntime) -> None:
        self.runtime = runtime
        config = runtime.config
        self.broker = make_broker(config.broker_url,
                                  config.api.redis_timeout_s if runtime.publish_only else None)
        self.route = self._declare(
            "route_events", Queue.ROUTE,
            lambda pks, tenant=None: actors.route_events(runtime, pks, tenant=tenant), LIVE)
        # fair lanes: a bursting tenant's events wait on their own queue, behind every live
        # route job in a worker, on their own route slots (docs/decisions.md, "Fair lanes")
        self.route_bulk = self._declare(
            "route_bulk", Queue.ROUTE_BULK,
            lambda pks, tenant=None: actors.route_events(runtime, pks, True, tenant), BULK)
        self.route_gate = RouteGate(self.broker.client if isinstance(self.broker, RedisBroker)
                                    else None)
        self.deliver = {
            channel: self._declare(f"deliver_{channel}", CHANNEL_QUEUES[channel],
                                   _deliver_fn(runtime, channel),
                                   LIVE if channel == Channel.BROWSER else BACKGROUND)
            for channel in Channel
        }
        self.expire = self._declare("expire_unacked", Queue.CONTROL,
                                    lambda ids: actors.expire_unacked(runtime, ids), CONTROL)
        self.wake = self._declare("wake_snoozed", Queue.CONTROL,
                                  lambda ids: snooze.wake_snoozed(runtime, ids), CONTROL)
        self._worker: dramatiq.Worker | None = None

    def _declare(self, name: str, queue: Queue, fn: Any, priority: int
                 ) -> dramatiq.Actor[Any, Any]:
        return dramatiq.actor(actor_name=name, queue_name=str(queue), broker=self.broker,
                              priority=priority)(fn)

    # ---------------------------------------------------------------- enqueueing

    def enqueue_route(self, pks: list[int], bulk: bool = False, tenant: str | None = None
                      ) -> None:
        """Route jobs for these events, on the bulk lane for a bursting tenant. A small
        publish of `tenant`'s joins its queued route job instead, if one is queued and has
        not claimed yet (RouteGate); with no `pks`, a job for whatever `tenant` has waiting."""
        actor = self.route_bulk if bulk else self.route
        if tenant is not None and len(pks) <= GATED_UP_TO:
            if self.route_gate.open(tenant, bulk):
                try:
                    actor.send(pks, tenant)
                except Exception:
                    self.route_gate.close(tenant, bulk)  # no job holds it: don't strand others
                    raise
            return
        for start in range(0, len(pks), ROUTE_BATCH):
            actor.send(pks[start:start + ROUTE_BATCH])

    def route_job_started(self, tenant: str, bulk: bool) -> None:
        """A gated route job is about to claim: the tenant's next small publish needs a job."""
        self.route_gate.close(tenant, bulk)

    def enqueue_deliveries(self, by_channel: dict[Channel, list[int]], delay_s: float = 0) -> None:
        for channel, ids in by_channel.items():
            size = self.runtime_adapter_batch(channel)
            for start in range(0, len(ids), size):
                chunk = ids[start:start + size]
                if delay_s > 0:
                    self.deliver[channel].send_with_options(args=(chunk,),
                                                            delay=int(delay_s * 1000))
                else:
                    self.deliver[channel].send(chunk)

    def enqueue_wake(self, due: dict[int, datetime]) -> None:
        """A wake-up message for each snoozed item at its time (rounded up to 100 ms: a
        message that came early would find nothing due)."""
        now = datetime.now(UTC)
        for item_id, at in due.items():
            delay_ms = math.ceil(max(0.0, (at - now).total_seconds()) * 10) * 100
            self.wake.send_with_options(args=([item_id],), delay=delay_ms)

    def enqueue_expiry(self, ids: list[int]) -> None:
        delay = int(self.runtime.config.delivery.presence_window_s * 1000)
        self.expire.send_with_options(args=(ids,), delay=delay)

    def check_channels(self) -> list[str]:
        """Check every channel's configuration at start-up. A channel left unconfigured
        stays off (logged, returned); one configured wrongly raises ConfigError naming
        the key and the fix, which stops the start-up."""
        from router.core.errors import ChannelOff

        off = []
        for channel in Channel:
            try:
                self.runtime.adapter(channel).check()
            except ChannelOff as exc:
                off.append(f"{channel}: {exc.message}")
                log.warning("channel.off", extra={"channel": str(channel),
                                                  "problem": exc.message})
        return off

    def queue_depth(self, channel: Channel | Queue) -> int:
        """Messages waiting (not yet fetched) on a channel's (or a) queue; -1 when unknown."""
        queue = str(CHANNEL_QUEUES[channel] if isinstance(channel, Channel) else channel)
        if isinstance(self.broker, RedisBroker):
            try:
                return int(self.broker.client.llen(f"{self.broker.namespace}:{queue}"))
            except redis.RedisError:
                return -1  # unknown: not taken for empty
        stub = self.broker.queues.get(queue)
        return stub.qsize() if stub is not None else 0

    def runtime_adapter_batch(self, channel: Channel) -> int:
        from channels.registry import ADAPTERS

        return min(ADAPTERS[channel].batch_size, self.runtime.config.delivery.batch_size * 5)

    # ---------------------------------------------------------------- running

    def start(self, threads: int = 4, queues: Iterable[str] | None = None) -> None:
        """Run actors in this process (embedded mode, or one `herald worker` process)."""
        self.check_channels()
        if isinstance(self.broker, WakingRedisBroker):  # an enqueue wakes it; etas bound it
            self.broker.idle_ms = self.runtime.config.delivery.idle_poll_ms
            # half the threads at most (and one more than its slots): the next job is at
            # hand when a slot frees, and the other half is free for live work
            slots = self.runtime.config.delivery.route_concurrency
            self.broker.prefetch_caps = {str(Queue.ROUTE_BULK): max(slots + 1, threads // 2)}
        # the worker threads' and the in-process broker's wait: short, so a stop is quick
        self._worker = dramatiq.Worker(self.broker, worker_threads=threads,
                                       worker_timeout=LOCAL_POLL_MS,
                                       queues=with_lanes(queues) if queues else None)
        self._worker.start()

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            for thread in worker.workers:  # first the work in hand, as Worker.stop does
                thread.stop()
            join_all(worker.workers, 10_000)  # type: ignore[no-untyped-call]
            for consumer in worker.consumers.values():  # then the consumers, at once
                consumer.stop()
            if isinstance(self.broker, WakingRedisBroker):
                self.broker.release_consumers(len(worker.consumers))
            worker.stop(timeout=10_000)
        self.broker.close()


def recovery_interval(heartbeat_s: float, lost_after_s: float) -> float:
    """How often a worker looks for dead workers' claims and lost messages: half of
    lost_after_s, so a loss is found between lost_after_s and 1.5x that, but never more
    often than it beats (each pass is four transactions and a few Redis calls: at every
    2 s beat they were most of an idle worker's CPU)."""
    return max(heartbeat_s, lost_after_s / 2)


def _deliver_fn(runtime: WorkerRuntime, channel: Channel) -> Any:
    def deliver(ids: list[int]) -> None:
        actors.deliver(runtime, channel, ids)

    deliver.__name__ = f"deliver_{channel}"
    return deliver


class Sweeper(threading.Thread):
    """Re-enqueues work left behind: every heartbeat it beats; every recovery interval
    (half of lost_after_s, never below the heartbeat) it releases dead workers' claims,
    re-enqueues lost messages and wakes overdue snoozes; every sweep interval it runs the
    full sweep."""

    def __init__(self, runtime: WorkerRuntime) -> None:
        super().__init__(name="herald-sweeper", daemon=True)
        self.runtime = runtime
        self.stopping = threading.Event()

    def run(self) -> None:
        cfg = self.runtime.config.delivery
        tick = min(cfg.heartbeat_s, cfg.sweep_interval_s)
        recover_every = recovery_interval(cfg.heartbeat_s, cfg.lost_after_s)
        next_sweep = time.monotonic() + cfg.sweep_interval_s
        next_recovery = time.monotonic()
        while True:
            self._guarded("heartbeat.failed", liveness.beat)
            if time.monotonic() >= next_recovery:
                next_recovery = time.monotonic() + recover_every
                self._recover()
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + cfg.sweep_interval_s
                self._guarded("sweep.failed", actors.sweep)
            if self.stopping.wait(tick):
                return

    def _recover(self) -> None:
        self._guarded("release.failed", liveness.release_dead)
        self._guarded("requeue.failed", liveness.requeue_lost)
        self._guarded("requeue_events.failed", liveness.requeue_lost_events)
        self._guarded("wake.failed", snooze.wake_overdue)

    def _guarded(self, name: str, step: Any) -> None:
        try:
            step(self.runtime)
        except Exception:  # noqa: BLE001 - keep going; the next pass retries
            log.exception(name)

    def stop(self) -> None:
        self.stopping.set()
        self._guarded("heartbeat.leave_failed", liveness.leave)
