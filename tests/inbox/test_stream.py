"""The live websocket (`WS /v1/me/stream`) across two API replicas sharing Redis:
fan-out, unread counts, replay by seq after a reconnect, limits and refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from router.delivery import access
from tests.harness import Client, Herald, free_port, wait_until
from tests.inbox import (
    AVATAR,
    Inbox,
    event,
    frame_checker,
    publish,
    seed_people,
    start,
    user_token,
    wait_delivered,
)

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


def next_frame(ws: ClientConnection, kind: str, timeout: float = 3) -> dict[str, Any]:
    """The next frame of this type (skipping others, e.g. a late item), within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = frame(ws, max(0.01, deadline - time.monotonic()))
        if got["type"] == kind:
            return got


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


def test_a_live_item_shows_the_directory_avatar_of_an_actor_the_event_left_bare(
        replicas, tenant):
    _, _, url_b = replicas
    tenant_id, secret, client = tenant
    with connect(ws_url(url_b, user_token(secret, tenant_id, "alice"))) as ws:
        assert frame(ws)["type"] == "hello"
        publish(client, event("AV-1", actor={"id": "max"}))
        assert next_frame(ws, "item")["item"]["actor"] == {"name": "Max Muster",
                                                           "avatar_url": AVATAR}


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

    def browser_rows() -> dict[str, Any]:
        return {d["receiver"]["id"]: d for d in client.activity(event_id)["deliveries"]
                if d["channel"] == "browser"}
    # bob's row is stored just after his live message was published
    browser = wait_until(lambda: (rows := browser_rows())["bob"]["id"] and rows, 10, 0.05,
                         what="bob's browser row")
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


# ------------------------------------------------------------ reads reach every session


def test_reading_on_one_replica_updates_every_session_of_the_reader_on_the_other(
        replicas, tenant):
    _, url_a, url_b = replicas
    tenant_id, secret, client = tenant
    publish(client, event("R-1"), event("R-2"))
    token = user_token(secret, tenant_id, "alice")
    with connect(ws_url(url_b, token)) as phone, connect(ws_url(url_b, token)) as tab, \
            Inbox(url_a, token) as alice:
        assert frame(phone) == frame(tab) == {"type": "hello", "unread": 2}
        first = alice.items()[0]
        sent = time.monotonic()
        assert alice.read(first["id"]).status_code == 200
        got = next_frame(phone, "unread")
        print(f"\nread on replica A -> unread frame on replica B: "
              f"{(time.monotonic() - sent) * 1000:.0f} ms")
        assert got == {"type": "unread", "unread": 1, "read": [first["id"]]}
        assert next_frame(tab, "unread") == got
        assert alice.read(first["id"]).status_code == 200  # read already: nothing changes
        assert quiet(phone)


def test_read_all_on_one_replica_tells_the_other_replicas_sessions_what_was_read(
        replicas, tenant):
    _, url_a, url_b = replicas
    tenant_id, secret, client = tenant
    publish(client, event("RA-1"), event("RA-2"), event("RA-3"))
    token = user_token(secret, tenant_id, "alice")
    with connect(ws_url(url_b, token)) as on_b, connect(ws_url(url_a, token)) as on_a, \
            Inbox(url_a, token) as alice:
        assert frame(on_b)["unread"] == frame(on_a)["unread"] == 3
        newest = max(i["seq"] for i in alice.items())
        response = alice.post("/v1/me/notifications/read-all")
        assert response.status_code == 200 and response.json() == {"unread": 0}
        expected = {"type": "unread", "unread": 0, "read_up_to_seq": newest}
        assert next_frame(on_b, "unread") == expected
        assert next_frame(on_a, "unread") == expected
        assert alice.post("/v1/me/notifications/read-all").json() == {"unread": 0}
        assert quiet(on_b)  # nothing was left to read
    with connect(ws_url(url_b, user_token(secret, tenant_id, "bob"))) as bobs:
        assert frame(bobs)["type"] == "hello" and quiet(bobs)


def test_clearing_a_codes_notifications_updates_its_code_users_open_sessions(
        replicas, tenant, pg):
    _, _, url_b = replicas
    tenant_id, _, client = tenant
    client.put("/v1/subjects/ticket/CL-1", json={"kind": "ticket", "id": "CL-1",
                                                 "code_id": "C-CL"})
    client.put("/v1/subscriptions/cu-cl", json={
        "id": "cu-cl", "subject_kind": "ticket", "subject_id": "CL-1", "code_id": "C-CL",
        "email": "anon@example.com", "created_by": "employee"})
    publish(client, event("CL-1", "ticket.message_added", message="before"))
    with pg.session() as s:
        token, _ = access.issue(s, tenant_id, "C-CL", ("ticket", "CL-1"), "cu-cl",
                                datetime.now(UTC), 14)
    with Inbox(url_b, token) as code_user, connect(ws_url(url_b, token)) as ws:
        [item] = code_user.items()
        assert frame(ws) == {"type": "hello", "unread": 1}
        assert client.post("/v1/codes/C-CL:clear-notifications").status_code == 200
        assert next_frame(ws, "unread") == {"type": "unread", "unread": 0,
                                            "hidden_up_to_seq": item["seq"]}


def test_a_new_item_for_a_code_user_updates_its_open_sessions_count(replicas, tenant, pg):
    """Code users get no live item message (no browser channel), but their feed grows:
    their open sessions hear the new count, as the code's cut-off lets them see it."""
    _, _, url_b = replicas
    tenant_id, _, client = tenant
    client.put("/v1/subjects/ticket/CN-1", json={"kind": "ticket", "id": "CN-1",
                                                 "code_id": "C-CN"})
    client.put("/v1/subscriptions/cu-cn", json={
        "id": "cu-cn", "subject_kind": "ticket", "subject_id": "CN-1", "code_id": "C-CN",
        "email": "anon@example.com", "created_by": "employee"})
    publish(client, event("CN-1", "ticket.message_added", message="first"))
    with pg.session() as s:
        token, _ = access.issue(s, tenant_id, "C-CN", ("ticket", "CN-1"), "cu-cn",
                                datetime.now(UTC), 14)
    with connect(ws_url(url_b, token)) as ws:
        assert frame(ws) == {"type": "hello", "unread": 1}
        publish(client, event("CN-1", "ticket.status_changed", status="closed"))
        assert next_frame(ws, "unread") == {"type": "unread", "unread": 2}
        assert client.post("/v1/codes/C-CN:clear-notifications").status_code == 200
        assert next_frame(ws, "unread")["unread"] == 0
        publish(client, event("CN-1", "ticket.message_added", message="after the cut-off"))
        assert next_frame(ws, "unread") == {"type": "unread", "unread": 1}


# ------------------------------------------------------------------ the documented frames


def test_every_frame_the_server_sends_matches_the_served_asyncapi_document(replicas, tenant):
    _, url_a, url_b = replicas
    tenant_id, secret, client = tenant
    document = httpx.get(f"{url_b}/asyncapi.json", timeout=10).json()
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["stream"]["address"] == "/v1/me/stream"
    assert {op["action"] for op in document["operations"].values()} == {"send", "receive"}
    assert set(document["components"]["messages"]) == {"hello", "item", "unread", "ack"}
    check = frame_checker(document)
    publish(client, event("D-1"))
    token = user_token(secret, tenant_id, "alice")
    with connect(ws_url(url_b, token, last_seq=0)) as ws, Inbox(url_a, token) as alice:
        sent = [frame(ws), frame(ws)]  # hello, then the replayed item
        publish(client, event("D-2", actor={"id": "nobody", "name": "Nina"}))
        sent.append(next_frame(ws, "item"))
        alice.read(sent[-1]["item"]["id"])
        sent.append(next_frame(ws, "unread"))
        alice.post("/v1/me/notifications/read-all")
        sent.append(next_frame(ws, "unread"))
        ack = {"type": "ack", "id": sent[-3]["item"]["id"], "seq": sent[-3]["item"]["seq"]}
    assert [f["type"] for f in sent] == ["hello", "item", "item", "unread", "unread"]
    assert [check(f) for f in [*sent, ack]] == [None] * 6
    assert check({"type": "unread", "unread": 1, "read": ["one"]}) is not None
    assert check({"type": "item", "unread": 1, "item": {**sent[1]["item"], "extra": 1}}) \
        is not None


def test_the_api_docs_link_the_asyncapi_document(replicas):
    _, url_a, _ = replicas
    description = httpx.get(f"{url_a}/openapi.json", timeout=10).json()["info"]["description"]
    assert "/asyncapi.json" in description
    assert httpx.get(f"{url_a}/asyncapi.json", timeout=10).status_code == 200


def test_reads_succeed_while_the_fan_out_redis_is_down(tmp_path, pg, new_tenant_key):
    """The read is committed before the frame is published: a dead pub/sub Redis costs
    the other sessions their frame, never the reader their answer."""
    herald = Herald(tmp_path, smtp={"port": 1}, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        start(herald)
        tenant_id, key, secret = new_tenant_key()
        with Client(herald.url, key) as client, \
                Inbox(herald.url, user_token(secret, tenant_id, "alice")) as alice:
            seed_people(client)
            publish(client, event("DN-1"), event("DN-2"))
            started = time.monotonic()
            assert alice.read(alice.items()[0]["id"]).status_code == 200
            response = alice.post("/v1/me/notifications/read-all")
            assert response.status_code == 200 and response.json() == {"unread": 0}
            assert time.monotonic() - started < 5
            assert alice.unread() == 0
        assert "live.tell_failed" in herald.log("api")
    finally:
        herald.stop()
