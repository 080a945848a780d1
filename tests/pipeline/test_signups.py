"""Code users sign up inside the event that creates their ticket or video session:
real `herald serve` / `herald worker`, the SMTP sink and the local push service."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from router.store import models as m
from tests.harness import Client, Herald, wait_until

pytestmark = pytest.mark.slow
TOKEN = re.compile(r"access_token=(hat_[A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg, sink, vapid):
    herald = Herald(tmp_path_factory.mktemp("signups"), smtp={"port": sink.port},
                    push={"vapid_private_key": vapid[0], "vapid_public_key": vapid[1]})
    herald.start_api()
    herald.start_worker()
    yield herald
    herald.stop()


@pytest.fixture
def tenant(deployment, new_tenant_key, sink, web_push):
    sink.clear()
    web_push.clear()
    tenant_id, key, _ = new_tenant_key("Signup Co")
    with Client(deployment.url, key) as client:
        yield tenant_id, client


def created_by_code_user(event_id: str, signups: list[dict], kind: str = "ticket") -> dict:
    return {"id": event_id, "type": "ticket.created" if kind == "ticket"
            else "video_session.requested",
            "actor": {"id": "visitor", "kind": "code_user", "name": "Visitor"},
            "subject": {"kind": kind, "id": "T-9", "number": "#9", "code_id": "QR-9",
                        "language": "de"},
            "data": {"title": "Lift stuck"}, "signups": signups}


def subscriptions(pg, tenant_id: str) -> list[m.Subscription]:
    with pg.session() as s:
        return list(s.scalars(select(m.Subscription).where(m.Subscription.tenant_id == tenant_id)))


def events_stored(pg, tenant_id: str) -> int:
    with pg.session() as s:
        return s.scalar(select(func.count()).select_from(m.EventRow).where(
            m.EventRow.tenant_id == tenant_id)) or 0


def test_a_code_user_who_signs_up_in_the_creating_event_gets_that_events_email_with_a_link(
        tenant, pg, sink):
    tenant_id, client = tenant
    body = created_by_code_user("create-1", [{"email": "visitor@anon.example"}])
    assert client.post("/v1/events", json=body).status_code == 202
    mail = wait_until(lambda: [x for x in sink.messages if x["To"] == "visitor@anon.example"],
                      what="the code user's email")[0]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert TOKEN.search(text), text
    verified = client.post("/v1/access-tokens:verify", json={"token": TOKEN.search(text)[1]})
    assert verified.json()["valid"] is True
    assert verified.json()["code_id"] == "QR-9"
    [sub] = subscriptions(pg, tenant_id)
    assert (sub.email, sub.language, sub.channels) == ("visitor@anon.example", "de", ["email"])


def test_republishing_the_creating_event_signs_nobody_up_twice(tenant, pg, sink):
    tenant_id, client = tenant
    body = created_by_code_user("create-2", [{"email": "once@anon.example", "language": "en"}])
    assert client.post("/v1/events", json=body).status_code == 202
    again = client.post("/v1/events", json=body)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    client.wait_terminal("create-2")
    assert len(subscriptions(pg, tenant_id)) == 1
    wait_until(lambda: [x for x in sink.messages if x["To"] == "once@anon.example"])
    assert len([x for x in sink.messages if x["To"] == "once@anon.example"]) == 1


def test_a_push_sign_up_in_a_video_session_request_gets_that_events_push(tenant, pg,
                                                                           web_push):
    tenant_id, client = tenant
    body = created_by_code_user("create-3", [{"push_subscription": web_push.new_subscription()}],
                                kind="video_session")
    assert client.post("/v1/events", json=body).status_code == 202
    [received] = web_push.wait_for(1, timeout=20)
    assert "access_token=hat_" in received.json()["link"]
    [sub] = subscriptions(pg, tenant_id)
    assert sub.channels == ["push"] and sub.subject_kind == "video_session"


def test_explain_shows_the_sign_ups_as_receivers_and_stores_nothing(tenant, pg):
    tenant_id, client = tenant
    body = created_by_code_user("explain-1", [{"email": "maybe@anon.example"}])
    plan = client.post("/v1/events:explain", json=body).json()
    assert [r["kind"] for r in plan["receivers"]] == ["code_user"]
    assert subscriptions(pg, tenant_id) == [] and events_stored(pg, tenant_id) == 0


@pytest.mark.parametrize("signup, path", [
    ({"email": "not-an-address"}, "signups.0.email"),
    ({"email": "a@b.example", "language": "deutsch!"}, "signups.0.language"),
    ({"email": "a@b.example", "phone": "+4912345"}, "signups.0.phone"),
    ({}, "signups.0"),
    ({"push_subscription": {"endpoint": "ftp://push.example/x", "keys": {
        "p256dh": "B" + "A" * 86, "auth": "A" * 22}}}, "signups.0.push_subscription.endpoint"),
])
def test_a_bad_sign_up_is_a_422_naming_the_field_and_stores_nothing(tenant, pg, signup, path):
    tenant_id, client = tenant
    response = client.post("/v1/events", json=created_by_code_user("bad-1", [signup]))
    assert response.status_code == 422, response.text
    assert path in [p["path"] for p in response.json()["error"]["problems"]]
    assert subscriptions(pg, tenant_id) == [] and events_stored(pg, tenant_id) == 0


def test_sign_ups_on_a_code_event_are_refused(tenant, pg):
    tenant_id, client = tenant
    body = {"id": "code-1", "type": "code.paired", "subject": {"kind": "code", "id": "QR-1",
                                                                "number": "QR-1"},
            "signups": [{"email": "x@anon.example"}]}
    response = client.post("/v1/events:batch", json=[body])
    assert response.status_code == 422
    assert [p["path"] for p in response.json()["error"]["problems"]] == ["0.signups"]
    assert events_stored(pg, tenant_id) == 0
