"""Presence (router.delivery.live): which receivers have an open websocket session, as the
router sees it from another process, against the real Redis."""

from __future__ import annotations

import asyncio
import time

import redis

from router.delivery.live import PRESENCE, PRESENCE_TTL_S, REPLICAS, Hub, Live, Session, member
from tests.conftest import REDIS_URL
from tests.harness import free_port

ALICE = ("acme", "employee", "alice")
BOB = ("acme", "employee", "bob")


async def _noop(_message: dict) -> None:
    return None


def _session(key: tuple[str, str, str]) -> Session:
    return Session(key=key, send=_noop)


def _with_hub(body) -> None:  # type: ignore[no-untyped-def]
    """Run `body(hub, worker_side)` with a started hub (its board in Redis), then clean up."""
    async def main() -> None:
        hub, worker = Hub(), Live(REDIS_URL)
        await hub.start(REDIS_URL)
        try:
            await body(hub, worker)
        finally:
            await hub.stop()
            worker.close()

    asyncio.run(main())


def test_a_joined_session_is_online_for_another_process_until_it_leaves():
    async def body(hub: Hub, worker: Live) -> None:
        alice = _session(ALICE)
        await hub.join(alice)
        assert worker.online([ALICE, BOB]) == {ALICE}
        await hub.leave(alice)
        assert worker.online([ALICE, BOB]) == set()

    _with_hub(body)


def test_a_receiver_stays_online_while_one_of_its_sessions_is_open():
    async def body(hub: Hub, worker: Live) -> None:
        first, second = _session(ALICE), _session(ALICE)
        await hub.join(first)
        await hub.join(second)
        await hub.leave(first)
        assert worker.online([ALICE]) == {ALICE}
        await hub.leave(second)
        assert worker.online([ALICE]) == set()

    _with_hub(body)


def test_a_replica_that_stopped_refreshing_counts_for_nobody():
    client, live = redis.Redis.from_url(REDIS_URL), Live(REDIS_URL)
    stale = "stale-replica-for-test"
    try:
        client.sadd(PRESENCE + stale, member(BOB))
        client.zadd(REPLICAS, {stale: time.time() - 2 * PRESENCE_TTL_S})
        assert live.online([BOB]) == set()
        client.zadd(REPLICAS, {stale: time.time()})
        assert live.online([BOB]) == {BOB}
    finally:
        client.delete(PRESENCE + stale)
        client.zrem(REPLICAS, stale)
        client.close()
        live.close()


def test_the_refresh_restores_a_lost_set_and_drops_members_without_a_session():
    async def body(hub: Hub, worker: Live) -> None:
        await hub.join(_session(ALICE))
        assert hub.board is not None
        client = redis.Redis.from_url(REDIS_URL)
        try:
            client.delete(PRESENCE + hub.replica)  # as after a Redis restart
            client.sadd(PRESENCE + hub.replica, member(BOB))  # a leave that never arrived
            assert worker.online([ALICE, BOB]) == {BOB}
            await hub.board.refresh(lambda: list(hub.sessions))
            assert worker.online([ALICE, BOB]) == {ALICE}
        finally:
            client.close()

    _with_hub(body)


def test_presence_that_cannot_be_told_counts_everyone_as_online():
    unreachable = Live(f"redis://127.0.0.1:{free_port()}/0")
    assert unreachable.online([ALICE]) is None
    unreachable.close()


def test_embedded_mode_asks_the_hub_in_this_process():
    async def main() -> None:
        hub = Hub()
        await hub.start("")  # no Redis: the in-process hub is the whole story
        live = Live("", hub)
        await hub.join(_session(ALICE))
        assert live.online([ALICE, BOB]) == {ALICE}
        await hub.stop()

    asyncio.run(main())


def test_an_api_replica_shuts_down_even_when_redis_stops_answering():
    """A Redis that accepts connections and never replies (hung, or a network black hole)
    must not keep an API replica from stopping: joins give up, and so does the stop."""
    async def main() -> float:
        held: list[asyncio.StreamWriter] = []

        async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # read nothing, answer nothing, never close

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        hub = Hub()
        await hub.start(f"redis://127.0.0.1:{port}/0")
        await hub.join(_session(ALICE))  # the presence write times out and is logged
        assert hub.count(ALICE) == 1, "the session is served even without presence"
        started = time.monotonic()
        await hub.stop()
        stopped_in = time.monotonic() - started
        for writer in held:
            writer.close()
        server.close()
        return stopped_in

    stopped_in = asyncio.run(asyncio.wait_for(main(), 60))
    assert stopped_in < 15, f"Hub.stop took {stopped_in:.1f} s against a silent Redis"
