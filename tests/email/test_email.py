"""Email channel and code-user access links, against a real aiosmtpd server and
real `herald serve` / `herald worker` processes on PostgreSQL and Redis."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from router.core.config import load_config
from router.core.errors import ConfigError
from router.store import models as m
from tests.harness import Client, Herald, own_mails, wait_until
from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.slow
TOKEN = re.compile(r"access_token=(hat_[A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg, sink):
    herald = Herald(tmp_path_factory.mktemp("email"), smtp={"port": sink.port},
                    access_token_days=7, delivery={"max_attempts": 60})
    herald.start_api()
    herald.start_worker()
    yield herald
    herald.stop()


@pytest.fixture
def client(deployment, new_tenant_key, sink):
    sink.clear()
    tenant, key, _ = new_tenant_key("Mail Co")
    with Client(deployment.url, key) as c:
        c.tenant = tenant
        c.put("/v1/users/sup", json={"id": "sup", "name": "Sam Sup", "email": "sup@acme.example",
                                     "language": "en"})
        c.put("/v1/users/boss", json={"id": "boss", "name": "Bea Boss", "language": "de",
                                      "email": "boss@acme.example"})
        c.put("/v1/templates/tpl", json={"id": "tpl", "groups": {"notification_receivers": [
            {"id": "g", "members": [{"kind": "user", "id": "sup"},
                                    {"kind": "user", "id": "boss"}]}]}})
        yield c


def ticket(event_id: str, subject_id: str = "T-1", actor: str | None = "cust-x", **extra) -> dict:
    body = {"id": event_id, "type": "ticket.status_changed",
            "subject": {"kind": "ticket", "id": subject_id, "number": "#42", "code_id": "QR-1",
                        "template_id": "tpl", **extra.pop("subject", {})},
            "data": {"title": "Lift", "status": "in_progress", **extra.pop("data", {})}}
    if actor:
        body["actor"] = {"id": actor, "name": "Visitor"}
    return body


def sign_up(client: Client, sid: str = "cu1", subject_id: str = "T-1", language: str = "de"):
    response = client.put(f"/v1/subscriptions/{sid}", json={
        "id": sid, "subject_kind": "ticket", "subject_id": subject_id, "code_id": "QR-1",
        "email": f"{sid}@anon.example", "language": language})
    assert response.status_code == 204, response.text


def mails_to(sink: SmtpSink, address: str) -> list:
    return [msg for msg in sink.messages if msg["To"] == address]


def text_of(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def html_of(msg) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


def test_german_code_user_gets_a_german_mail_with_a_verifying_link_and_expiry(client, sink):
    sign_up(client)
    client.post("/v1/events", json=ticket("e1"))
    client.wait_terminal("e1")
    [mail] = wait_until(lambda: mails_to(sink, "cu1@anon.example"), what="code user mail")
    assert mail["Content-Language"] == "de"
    body = text_of(mail)
    assert "#42" in mail["Subject"] and "Guten Tag" in body
    token = TOKEN.search(body).group(1)
    verified = client.post("/v1/access-tokens:verify", json={"token": token}).json()
    assert verified["valid"] is True
    assert verified["subject"] == {"kind": "ticket", "id": "T-1"}
    assert verified["code_id"] == "QR-1" and verified["subscription_id"] == "cu1"
    expires = datetime.fromisoformat(verified["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    assert "gültig bis" in body and str(expires.day) in body.split("gültig bis")[1][:40]
    assert 'data-herald="expiry"' in html_of(mail)


def test_tokens_are_refused_after_revoke_access_and_after_expiry(client, sink, pg):
    sign_up(client)
    client.post("/v1/events", json=ticket("e2"))
    [mail] = wait_until(lambda: mails_to(sink, "cu1@anon.example"), what="code user mail")
    token = TOKEN.search(text_of(mail)).group(1)
    assert client.post("/v1/access-tokens:verify", json={"token": token}).json()["valid"]
    # simulate time: the clock moves past the token's expiry
    with pg.session() as s:
        s.execute(update(m.AccessToken).where(m.AccessToken.subscription_id == "cu1")
                  .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert client.post("/v1/access-tokens:verify", json={"token": token}).json() == {
        "valid": False, "reason": "expired"}
    client.post("/v1/events", json=ticket("e3"))
    wait_until(lambda: len(mails_to(sink, "cu1@anon.example")) == 2, what="second mail")
    fresh = TOKEN.search(text_of(mails_to(sink, "cu1@anon.example")[1])).group(1)
    assert client.post("/v1/codes/QR-1:revoke-access").status_code == 200
    assert client.post("/v1/access-tokens:verify", json={"token": fresh}).json() == {
        "valid": False, "reason": "revoked"}
    feed = httpx.get(f"{client.base_url}/v1/me/notifications",
                     headers={"Authorization": f"Bearer {fresh}"})
    assert feed.status_code == 401 and feed.json()["error"]["code"] == "token.revoked"
    unknown = client.post("/v1/access-tokens:verify", json={"token": "hat_nope"}).json()
    assert unknown == {"valid": False, "reason": "unknown"}


def test_employees_get_mail_at_their_address_in_their_language(client, sink):
    client.post("/v1/events", json=ticket("e4"))
    client.wait_terminal("e4")
    [en] = wait_until(lambda: mails_to(sink, "sup@acme.example"), what="employee mail")
    [de] = mails_to(sink, "boss@acme.example")
    assert en["Content-Language"] == "en" and "Hello Sam Sup" in text_of(en)
    assert de["Content-Language"] == "de" and "Hallo Bea Boss" in text_of(de)
    assert "access_token" not in text_of(en)
    for mail in (en, de):
        assert mail["Date"] and mail["Message-ID"]
        assert mail["In-Reply-To"] == mail["References"] and "T-1" in mail["References"]
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_switch_origin_and_internal_visibility_are_honoured(client, sink, pg):
    sign_up(client)
    client.put("/v1/users/boss/settings", json={"email": False})
    client.post("/v1/events", json=ticket("e5", actor="sup", subject={"visibility": "internal"}))
    act = client.wait_terminal("e5")
    dropped = {(d["id"], d["channel"]): d["setting"] for d in act["dropped"]}
    assert dropped[("boss", "email")] == "email = off"
    assert "origin" in dropped[("sup", None)]
    assert "internal" in dropped[("cu1", None)]
    assert not [d for d in act["deliveries"] if d["channel"] == "email"]
    assert own_mails(sink, pg, client.tenant) == []


def test_one_click_unsubscribe_is_honoured_by_the_next_event(client, sink, pg):
    sign_up(client)
    client.post("/v1/events", json=ticket("e6"))
    wait_until(lambda: len(own_mails(sink, pg, client.tenant)) == 3, what="three mails")
    for address in ("sup@acme.example", "cu1@anon.example"):
        [mail] = mails_to(sink, address)
        url = mail["List-Unsubscribe"].strip("<>")
        assert httpx.get(url).status_code == 200  # a scanner's GET changes nothing
        response = httpx.post(url, content="List-Unsubscribe=One-Click",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200, response.text
    client.post("/v1/events", json=ticket("e7"))
    act = client.wait_terminal("e7")
    assert {d["receiver"]["id"] for d in act["deliveries"] if d["channel"] == "email"} == {"boss"}
    assert client.get("/v1/users/sup/settings").json()["email"] is False
    assert httpx.post(f"{client.base_url}/v1/unsubscribe/hu_guessed").status_code == 404


def test_html_in_event_data_is_escaped(client, sink):
    client.post("/v1/events", json=ticket("e8", data={"title": "<script>alert(1)</script>"}))
    [mail] = wait_until(lambda: mails_to(sink, "sup@acme.example"), what="mail")
    html = html_of(mail)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_mails_queued_while_smtp_is_down_all_arrive_once_when_it_returns(client, sink, pg):
    sink.stop()
    events = [f"down-{i}" for i in range(5)]
    for event_id in events:
        client.post("/v1/events", json=ticket(event_id, subject_id=event_id))
    wait_until(lambda: all(
        any(d["channel"] == "email" and d["attempts"] >= 1 for d in client.activity(e)["deliveries"])
        for e in events), 30, what="failed attempts while SMTP is down")
    sink.start()
    for event_id in events:
        client.wait_terminal(event_id, timeout=60)
    mails = own_mails(sink, pg, client.tenant)  # the sweeper may send other tests' leftovers
    assert len(mails) == 10
    subjects = [(m["To"], m["References"]) for m in mails]
    assert len(set(subjects)) == 10
    assert all(d["status"] == "sent" for e in events for d in client.activity(e)["deliveries"])


def test_a_550_is_a_permanent_failure_with_the_bounce_reason(client, sink):
    sink.reject("sup@acme.example", 550, "5.1.1 mailbox unavailable")
    try:
        client.post("/v1/events", json=ticket("e9"))
        act = client.wait_terminal("e9")
    finally:
        sink.accept_all()
    [failed] = [d for d in act["deliveries"] if d["receiver"]["id"] == "sup"
                and d["channel"] == "email"]
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert "550" in failed["last_error"] and "mailbox unavailable" in failed["last_error"]


def test_clear_notifications_hides_older_items_from_code_users_only(client, sink, pg):
    from router.delivery import access

    sign_up(client)
    client.post("/v1/events", json=ticket("e10"))
    client.wait_terminal("e10")
    with pg.session() as s:
        tenant = s.query(m.Subscription.tenant_id).filter(m.Subscription.id == "cu1").order_by(
            m.Subscription.created_at.desc()).first()[0]
        token, _ = access.issue(s, tenant, "QR-1", ("ticket", "T-1"), "cu1",
                                datetime.now(UTC), 7)
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{client.base_url}/v1/me/notifications"
    assert len(httpx.get(url, headers=auth).json()["items"]) == 1
    assert client.post("/v1/codes/QR-1:clear-notifications").status_code == 200
    assert httpx.get(url, headers=auth).json()["items"] == []
    with pg.session() as s:
        assert s.query(m.FeedItem).filter(m.FeedItem.tenant_id == tenant,
                                          m.FeedItem.receiver_kind == "employee").count() == 2
        assert s.query(m.FeedItem).filter(m.FeedItem.tenant_id == tenant,
                                          m.FeedItem.receiver_id == "cu1").count() == 1


def test_access_token_lifetime_above_14_days_is_refused_at_start_up(tmp_path):
    with pytest.raises(ConfigError, match="at most 14 days"):
        load_config(access_token_days=15)
    herald = Herald(tmp_path, embedded=True, access_token_days=30)
    result = herald.cli("migrate")
    assert result.returncode == 2
    assert "access_token_days must be between 1 and 14" in result.stderr
