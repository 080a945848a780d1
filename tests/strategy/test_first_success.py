"""Sending strategies (DESIGN §2): `first_success` walks the receiver's channels in
order and stops at the first success; `all` sends on every channel."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from websockets.sync.client import connect

from router.core.security import mint_user_token
from tests.harness import Client, Herald, wait_until
from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.slow
OPS = "ops@acme.example"
BROWSER_THEN_EMAIL = {"advanced": {"all": {"channels": ["browser", "email"],
                                           "strategy": "first_success"}}}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg, sink):
    herald = Herald(tmp_path_factory.mktemp("strategy"), smtp={"port": sink.port})
    herald.start_api()
    herald.start_worker(threads=2)
    yield herald
    herald.stop()


@pytest.fixture
def tenant(deployment, new_tenant_key, sink):
    sink.clear()
    tenant_id, key, secret = new_tenant_key("Strategy Co")
    with Client(deployment.url, key) as client:
        client.put("/v1/users/ops", json={"id": "ops", "email": "ops@acme.example",
                                          "roles": ["admin"]})
        yield client, mint_user_token(secret, tenant_id, "ops", timedelta(hours=1))


def code_event(event_id: str) -> dict:
    return {"id": event_id, "type": "code.deactivated",
            "subject": {"kind": "code", "id": "QR-9", "number": "QR-9"}}


def mails_to(sink: SmtpSink, address: str) -> list:
    """The sink's mails to this test's receiver. (The PostgreSQL schema is shared by the
    session's tests, so this deployment's sweeper may deliver mail another module's
    tenant left pending to the same sink.)"""
    return [m for m in list(sink.messages) if m["To"] == address]


def steps(client: Client, event_id: str) -> list[dict]:
    act = client.wait_terminal(event_id, timeout=30)
    return sorted(act["deliveries"], key=lambda d: d["step"])


def test_unacknowledged_browser_step_falls_through_to_email(tenant, sink):
    client, _ = tenant
    client.put("/v1/users/ops/settings", json=BROWSER_THEN_EMAIL)
    client.post("/v1/events", json=code_event("fs-1"))
    wait_until(lambda: len(steps(client, "fs-1")) == 2 and steps(client, "fs-1")[1][
        "status"] == "sent", 30, what="the email step")
    browser, email = steps(client, "fs-1")
    assert (browser["channel"], browser["status"]) == ("browser", "failed")
    assert "no live session acknowledged" in browser["last_error"]
    assert any("next: email" in h["detail"] for h in browser["history"])
    assert (email["channel"], email["step"], email["status"]) == ("email", 1, "sent")
    assert "tried because browser did not succeed" in email["history"][0]["detail"]
    wait_until(lambda: mails_to(sink, OPS), 10, what="the mail to ops")
    assert len(mails_to(sink, OPS)) == 1


def test_an_acknowledged_browser_step_ends_the_sequence(tenant, deployment, sink):
    client, token = tenant
    client.put("/v1/users/ops/settings", json=BROWSER_THEN_EMAIL)
    ws_url = deployment.url.replace("http", "ws") + f"/v1/me/stream?token={token}"
    with connect(ws_url) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        client.post("/v1/events", json=code_event("fs-2"))
        frame = json.loads(ws.recv(timeout=10))
        assert frame["type"] == "item" and frame["item"]["event_type"] == "code.deactivated"
        ws.send(json.dumps({"type": "ack", "id": frame["item"]["id"],
                            "seq": frame["item"]["seq"]}))
        [browser] = wait_until(lambda: [d for d in steps(client, "fs-2")
                                        if d["status"] == "sent"], 10, what="acked step")
    assert browser["channel"] == "browser" and browser["provider_response"].startswith(
        "acknowledged")
    assert any("not tried: email" in h["detail"] for h in browser["history"])
    assert len(steps(client, "fs-2")) == 1
    assert mails_to(sink, OPS) == []


def test_a_failed_email_step_moves_on_to_the_browser(tenant, sink):
    client, _ = tenant
    client.put("/v1/users/ops/settings", json={"advanced": {"code.deactivated": {
        "channels": ["email", "browser"], "strategy": "first_success"}}})
    sink.reject("ops@acme.example", 550, "5.1.1 no such mailbox")
    try:
        client.post("/v1/events", json=code_event("fs-3"))
        wait_until(lambda: len(steps(client, "fs-3")) == 2, 30, what="second step")
    finally:
        sink.accept_all()
    email, browser = steps(client, "fs-3")
    assert (email["channel"], email["status"]) == ("email", "failed")
    assert "550" in email["last_error"]
    assert browser["channel"] == "browser" and browser["step"] == 1


def test_strategy_all_sends_on_every_allowed_channel(tenant, sink):
    client, _ = tenant
    client.put("/v1/users/ops/settings", json={"advanced": {"all": {
        "channels": ["browser", "email"], "strategy": "all"}}})
    client.post("/v1/events", json=code_event("all-1"))
    deliveries = steps(client, "all-1")
    assert sorted((d["channel"], d["status"], d["step"]) for d in deliveries) == [
        ("browser", "sent", 0), ("email", "sent", 0)]
    assert len(wait_until(lambda: mails_to(sink, OPS), 10, what="the mail to ops")) == 1


def test_origin_me_is_honoured_per_event_type_with_the_all_row_elsewhere(tenant):
    client, _ = tenant
    client.put("/v1/users/ops/settings", json={"advanced": {
        "code.paired": {"channels": ["browser"], "origin": ["me", "others"]},
        "all": {"channels": ["browser"], "origin": ["others"]}}})
    mine = {"actor": {"id": "ops"}}
    client.post("/v1/events", json={**code_event("o-1"), "type": "code.paired", **mine})
    client.post("/v1/events", json={**code_event("o-2"), **mine})
    assert [d["channel"] for d in steps(client, "o-1")] == ["browser"]
    act = client.wait_terminal("o-2")
    assert act["deliveries"] == [] and "origin" in act["dropped"][0]["reason"]
