"""The Redis broker's idle consumers are woken by an enqueue (workers.broker), against
the real Redis: a message sent to a quiet queue is fetched at once, not after the
consumer's idle backoff."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
import redis

from tests.conftest import REDIS_URL
from workers.broker import WAKE, WakingRedisBroker

IDLE_MS = 30_000  # an idle consumer's longest backoff, as if delivery.idle_poll_ms were 30 s


@pytest.fixture
def queue() -> Iterator[tuple[WakingRedisBroker, dramatiq.Actor, str]]:  # type: ignore[type-arg]
    broker = WakingRedisBroker(url=REDIS_URL)
    name = f"test-wake-{uuid.uuid4().hex[:8]}"
    actor = dramatiq.actor(actor_name=f"echo_{name}", queue_name=name, broker=broker)(
        lambda value: value)
    try:
        yield broker, actor, name
    finally:
        broker.flush(name)
        # and what a stop test left for this process's consumers
        broker.client.delete(WAKE + name, WAKE + name + ".DQ", broker.stop_key)
        broker.close()


def test_an_idle_consumer_fetches_a_message_as_soon_as_it_is_sent(queue):
    broker, actor, name = queue
    consumer = broker.consume(name, prefetch=1, timeout=IDLE_MS)
    consumer.idle_misses = 20  # long idle: the next wait is 15-30 s without a wake-up
    got: list[object] = []

    def consume() -> None:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            message = next(consumer)
            if message is not None:
                got.append(message.args)
                consumer.ack(message)
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.3)  # the consumer is waiting now
    sent = time.monotonic()
    actor.send("hello")
    thread.join(timeout=40)
    waited = time.monotonic() - sent
    consumer.close()
    assert got == [("hello",)]
    assert waited < 10, f"the message waited {waited:.1f} s: the consumer slept its backoff"


def test_a_delayed_message_wakes_its_delay_queue_and_the_wake_list_stays_one_long(queue):
    broker, actor, name = queue
    client = redis.Redis.from_url(REDIS_URL)
    try:
        actor.send_with_options(args=("later",), delay=60_000)
        assert client.llen(WAKE + name) == 0, "a delayed message is not for the queue itself"
        assert client.llen(WAKE + name + ".DQ") == 1, "its .DQ consumer takes it at once"
        for i in range(5):
            actor.send(i)
        assert client.llen(WAKE + name) == 1, "nobody waits: one token, not one per message"
    finally:
        client.close()


def test_the_private_consumer_the_broker_subclasses_still_has_the_shape_it_relies_on(queue):
    """docs/decisions.md, "The Redis consumer subclass stays, pinned": if a Dramatiq upgrade
    changes these, this fails before any latency does."""
    import inspect

    from dramatiq.brokers.redis import _RedisConsumer

    params = list(inspect.signature(_RedisConsumer.__init__).parameters)
    assert params[:5] == ["self", "broker", "queue_name", "prefetch", "timeout"]
    broker, _actor, name = queue
    consumer = broker.consume(name, prefetch=1, timeout=5)
    try:
        started = time.monotonic()
        assert next(consumer) is None  # an empty fetch is None, after at most one short wait
        assert time.monotonic() - started < 2
    finally:
        consumer.close()


def test_a_long_idle_wait_ends_when_a_delayed_message_falls_due(queue):
    """Dramatiq's consumer thread moves a due delayed message only between two answers of
    the consumer: a consumer idle for up to 30 s must answer by the message's eta."""
    broker, actor, name = queue
    broker.idle_ms = IDLE_MS
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    done: list[float] = []
    actor.fn = lambda value: done.append(time.monotonic())  # type: ignore[method-assign]
    worker.start()
    try:
        time.sleep(1.5)  # both consumers idle, waiting up to IDLE_MS
        sent = time.monotonic()
        actor.send_with_options(args=("x",), delay=2_000)
        deadline = time.monotonic() + 15
        while not done and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop(timeout=5_000)
    assert done, "the delayed message never ran: the consumer slept past its eta"
    late = done[0] - sent - 2.0
    assert -0.05 < late < 1.0, f"ran {late:.2f} s after its eta"


def test_a_stopping_worker_does_not_wait_out_its_consumers_idle_backoff(queue):
    from workers.broker import LOCAL_POLL_MS
    broker, _actor, _name = queue
    broker.idle_ms = IDLE_MS
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=LOCAL_POLL_MS)
    worker.start()
    time.sleep(1.5)  # the consumers are in their 30 s wait
    started = time.monotonic()
    for thread in worker.workers:
        thread.stop()
    for consumer in worker.consumers.values():
        consumer.stop()
    broker.release_consumers(len(worker.consumers))
    worker.stop(timeout=10_000)
    assert time.monotonic() - started < 3, "the stop waited for the idle backoff"


@pytest.mark.slow
def test_an_idle_wait_longer_than_the_socket_timeout_ends_quietly(queue):
    """redis-py 8 gives a client a 5 s socket timeout: an idle wait longer than that must
    neither turn into a read timeout (Dramatiq logs it CRITICAL and restarts the consumer
    after a pause) nor be cut short into more polls: it blocks on a client of its own."""
    broker, _actor, name = queue
    consumer = broker.consume(name, prefetch=1, timeout=12_000)
    consumer.idle_misses = 20  # the next wait is 6-12 s
    started = time.monotonic()
    try:
        assert next(consumer) is None
    finally:
        consumer.close()
    waited = time.monotonic() - started
    assert 5.5 < waited < 14, f"waited {waited:.1f} s for an idle wait of 6-12 s"
