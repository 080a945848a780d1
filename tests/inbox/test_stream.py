"""The live websocket (`WS /v1/me/stream`) across two API replicas sharing Redis:
fan-out, unread counts, replay by seq after a reconnect, limits and refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.harness import Client, Herald, wait_until
from tests.inbox import Inbox, event, publish, seed_people, start, user_token, wait_delivered

pytestmark = pytest.mark.slow
MAX_WS = 3


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, pg) -> Iterator[tuple[Herald, str, str]]:
    """(deployment, replica A url, replica B url): two `herald serve`, one worker, Redis."""
    herald = Herald(tmp_path_factory.mktemp("stream"), smtp={"port": 1},
                    api={"max_ws_per_user": MAX_WS})
    try:
        [url_b] = start(herald, replicas=1)
        yield herald, herald.url, url_b
    finally:
        herald.stop()


@pytest.fixture
def tenant(replicas, new_tenant_key):
    _, url_a, _ = replicas
    tenant_id, key, secret = new_tenant_key()
    with Client(url_a, key) as client:
        seed_people(client)
        yield tenant_id, secret, client


def ws_url(http_url: str, token: str, **params: Any) -> str:
    query = urlencode({"token": token, **params})
    return http_url.replace("http://", "ws://") + f"/v1/me/stream?{query}"


def frame(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def refusal(url: str) -> tuple[int, str]:
    """The close code and reason of a connection the server refuses."""
    with connect(url) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def quiet(ws: ClientConnection, seconds: float = 0.7) -> bool:
    """True when nothing more arrives for a while."""
    try:
        ws.recv(timeout=seconds)
    except TimeoutError:
        return True
    return False


def test_an_event_published_on_one_replica_reaches_a_client_on_the_other(replicas, tenant):
    _, url_a, url_b = replicas
    tenant_id, secret, client = tenant
    wait_delivered(client, publish(client, event("L-0"))[0])
    token = user_token(secret, tenant_id, "alice")
    with connect(ws_url(url_b, token)) as on_b, connect(ws_url(url_a, token)) as on_a:
        assert frame(on_b) == {"type": "hello", "unread": 1}
        assert frame(on_a) == {"type": "hello", "unread": 1}
        sent = time.monotonic()
        response = client.post("/v1/events", json=event("L-1", title="Live one"))
        assert response.status_code == 202
        got = frame(on_b)
        latency = time.monotonic() - sent
        print(f"\npublish on replica A -> item on replica B: {latency * 1000:.0f} ms")
        assert got["type"] == "item" and got["unread"] == 2
        assert got["item"]["subject"]["id"] == "L-1" and got["item"]["unread"] is True
        assert got["item"]["title"] == "New ticket #L-1"
        assert frame(on_a) == got  # every open session of the receiver gets it
        assert quiet(on_b, 0.3)
    with Inbox(url_b, token) as alice:
        assert alice.items()[0]["id"] == got["item"]["id"] and alice.unread() == 2


def test_only_the_receivers_own_sessions_get_an_item(replicas, tenant):
    _, url_a, url_b = replicas
    tenant_id, secret, client = tenant
    alice, bob = (user_token(secret, tenant_id, u) for u in ("alice", "bob"))
    with connect(ws_url(url_b, bob)) as bobs, connect(ws_url(url_a, alice)) as alices:
        assert frame(bobs)["type"] == frame(alices)["type"] == "hello"
        publish(client, event("O-1", creator="alice"))
        assert frame(alices)["item"]["subject"]["id"] == "O-1"
        assert quiet(bobs)


def test_a_receiver_without_an_open_session_is_settled_at_routing(replicas, tenant):
    """No live message to build for a closed inbox: the feed item is the delivery."""
    _, url_a, url_b = replicas
    tenant_id, secret, client = tenant
    with connect(ws_url(url_b, user_token(secret, tenant_id, "bob"))) as bobs:
        assert frame(bobs)["type"] == "hello"
        event_id = publish(client, event("P-1", creator="alice", participants=["bob"]))[0]
        assert frame(bobs)["item"]["subject"]["id"] == "P-1"
    wait_delivered(client, event_id)
    browser = {d["receiver"]["id"]: d for d in client.activity(event_id)["deliveries"]
               if d["channel"] == "browser"}
    assert browser["alice"]["status"] == "sent" and browser["alice"]["attempts"] == 0
    assert browser["alice"]["provider_response"].startswith("no open session")
    assert [h["status"] for h in browser["alice"]["history"]] == ["pending", "sent"]
    assert browser["bob"]["provider_response"] == "published live"
    assert browser["bob"]["attempts"] == 1
    with Inbox(url_a, user_token(secret, tenant_id, "alice")) as alice:
        assert alice.items()[0]["subject"]["id"] == "P-1" and alice.unread() == 1


def test_a_session_that_closed_is_no_longer_counted_as_open(replicas, tenant):
    _, _, url_b = replicas
    tenant_id, secret, client = tenant
    with connect(ws_url(url_b, user_token(secret, tenant_id, "alice"))) as ws:
        assert frame(ws)["type"] == "hello"
    event_id = publish(client, event("P-2", creator="alice"))[0]
    wait_delivered(client, event_id)
    [browser] = [d for d in client.activity(event_id)["deliveries"] if d["channel"] == "browser"]
    assert browser["provider_response"].startswith("no open session")


def test_a_stacked_item_arrives_again_with_its_new_count_and_seq(replicas, tenant):
    _, _, url_b = replicas
    tenant_id, secret, client = tenant
    with connect(ws_url(url_b, user_token(secret, tenant_id, "alice"))) as ws:
        assert frame(ws) == {"type": "hello", "unread": 0}
        publish(client, event("K-1", "ticket.message_added", message="one"))
        first = frame(ws)
        publish(client, event("K-1", "ticket.message_added", message="two"))
        second = frame(ws)
    assert second["item"]["id"] == first["item"]["id"]
    assert second["item"]["seq"] > first["item"]["seq"]
    assert (second["item"]["count"], second["unread"]) == (2, 1)
    assert second["item"]["message"].endswith("“two”")


def test_reconnecting_with_last_seq_replays_exactly_what_was_missed(replicas, tenant):
    _, url_a, url_b = replicas
    tenant_id, secret, client = tenant
    token = user_token(secret, tenant_id, "alice")
    with connect(ws_url(url_b, token)) as ws:
        assert frame(ws)["type"] == "hello"
        publish(client, event("M-1", "ticket.message_added", message="seen"))
        seen = frame(ws)["item"]
        publish(client, event("M-0", "ticket.message_added", message="also seen"))
        last_seq = frame(ws)["item"]["seq"]
    missed = [event("M-2", "ticket.message_added", message="missed"),
              event("M-1", "ticket.message_added", message="stacked while away")]
    for doc in missed:  # one at a time: the stacked one must come last
        publish(client, doc)
        wait_delivered(client, doc["id"])  # published live to nobody
    with connect(ws_url(url_a, token, last_seq=last_seq)) as ws:
        hello, *replayed = [frame(ws) for _ in range(3)]
        assert quiet(ws)
    assert hello == {"type": "hello", "unread": 3}
    assert [f["item"]["subject"]["id"] for f in replayed] == ["M-2", "M-1"]
    assert all(f["type"] == "item" and f["unread"] == 3 for f in replayed)
    stacked = replayed[1]["item"]
    assert stacked["id"] == seen["id"] and stacked["count"] == 2
    assert [f["item"]["seq"] for f in replayed] == sorted(f["item"]["seq"] for f in replayed)
    assert min(f["item"]["seq"] for f in replayed) > last_seq
    with connect(ws_url(url_b, token)) as ws:  # no last_seq: just the greeting
        assert frame(ws) == {"type": "hello", "unread": 3}
        assert quiet(ws)


def test_the_hello_frame_carries_the_unread_count(replicas, tenant):
    _, _, url_b = replicas
    tenant_id, secret, client = tenant
    publish(client, event("H-1"), event("H-2"), event("H-3"))
    token = user_token(secret, tenant_id, "alice")
    with Inbox(url_b, token) as alice:
        alice.read(alice.items()[0]["id"])
        with connect(ws_url(url_b, token)) as ws:
            assert frame(ws) == {"type": "hello", "unread": 2} and alice.unread() == 2


def test_a_user_over_the_connection_limit_is_refused(replicas, tenant):
    _, _, url_b = replicas
    tenant_id, secret, _ = tenant
    alice = user_token(secret, tenant_id, "alice")
    with ExitStack() as stack:
        open_ = [stack.enter_context(connect(ws_url(url_b, alice))) for _ in range(MAX_WS)]
        for ws in open_:
            assert frame(ws)["type"] == "hello"
        assert refusal(ws_url(url_b, alice)) == (1013, "too many connections")
        with connect(ws_url(url_b, user_token(secret, tenant_id, "bob"))) as bobs:
            assert frame(bobs)["type"] == "hello"  # the limit is per user
        open_.pop().close()

        def room_again() -> bool:
            ws = stack.enter_context(connect(ws_url(url_b, alice)))
            try:
                return frame(ws)["type"] == "hello"
            except ConnectionClosed:
                return False

        wait_until(room_again, 10, 0.1, what="a freed connection slot")


@pytest.mark.parametrize("token, code", [("", "auth.required"), ("garbage", "token.unknown"),
                                         ("a.b.c", "token.invalid")])
def test_a_bad_token_is_refused_with_a_policy_violation(replicas, token, code):
    _, _, url_b = replicas
    assert refusal(ws_url(url_b, token)) == (1008, code)


def test_an_expired_or_foreign_token_is_refused(replicas, tenant, new_tenant_key):
    _, _, url_b = replicas
    tenant_id, secret, _ = tenant
    _, _, other_secret = new_tenant_key("Other")
    expired = user_token(secret, tenant_id, "alice", timedelta(seconds=-5))
    assert refusal(ws_url(url_b, expired)) == (1008, "token.expired")
    forged = user_token(other_secret, tenant_id, "alice")
    assert refusal(ws_url(url_b, forged)) == (1008, "token.invalid")
