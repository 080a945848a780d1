"""Delay, cancel_on and escalate end to end: `herald serve` and `herald worker` processes,
a real SMTP sink, rule files with windows of seconds (the durable timer is the row)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import redis

from router.core.security import mint_user_token
from tests.harness import Client, Herald, wait_until
from tests.ruleset.test_timing import rules_with
from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.slow  # processes, and waits for due times
AFTER_S = 2
TIMED = f"""events:
  ticket.closed: {{subject: ticket, title: Ticket closed}}
  ticket.reminder:
    subject: ticket
    title: Reminder
    delay: {{channels: [email], after: {AFTER_S}s, cancel_on: [ticket.closed]}}
  ticket.urgent:
    {{subject: ticket, title: Urgent, escalate: {{after: {AFTER_S}s, to: [email]}}}}
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg, sink):
    rules = rules_with(tmp_path_factory.mktemp("timed-rules"), TIMED)
    herald = Herald(tmp_path_factory.mktemp("timed"), smtp={"port": sink.port},
                    rules_path=str(rules))
    herald.start_api()
    herald.start_worker("worker-1", threads=2)
    herald.start_worker("worker-2", threads=2)  # two processes race for every due timer
    yield herald
    herald.stop()


@pytest.fixture
def tenant(deployment, new_tenant_key, sink):
    sink.clear()
    tenant, key, secret = new_tenant_key("Timer Co")
    with Client(deployment.url, key) as c:
        c.put("/v1/users/ann", json={"id": "ann", "name": "Ann", "email": "ann@acme.example"})
        yield c, mint_user_token(secret, tenant, "ann", timedelta(hours=1))


def event(event_id: str, etype: str, subject: str = "T-1") -> dict:
    return {"id": event_id, "type": etype, "data": {"title": f"{etype} {subject}", "message": "M"},
            "subject": {"kind": "ticket", "id": subject, "number": "#7", "creator_id": "ann"}}


def mails(sink: SmtpSink) -> list:
    return [msg for msg in sink.messages if msg["To"] == "ann@acme.example"]


def subjects(sink: SmtpSink, each: bool = False) -> Any:
    found = [msg["Subject"] for msg in mails(sink)]
    return found if each else set(found)


def email_of(client: Client, event_id: str) -> dict:
    def routed() -> dict | None:
        found = [d for d in client.activity(event_id)["deliveries"] if d["channel"] == "email"]
        return found[0] if found else None
    return wait_until(routed, what=f"the email delivery of {event_id}")


def test_a_delayed_email_arrives_after_its_delay_and_not_before(tenant, sink):
    client, _ = tenant
    client.post("/v1/events", json=event("d1", "ticket.reminder"))
    pending = email_of(client, "d1")
    due = datetime.fromisoformat(pending["next_attempt_at"])
    assert pending["status"] == "pending"
    assert pending["history"][0]["detail"].startswith(f"planned: email delayed {AFTER_S}s until")
    while datetime.now(due.tzinfo) < due - timedelta(milliseconds=200):
        assert mails(sink) == [], "the delayed email went out before its due time"
        time.sleep(0.1)
    [mail] = wait_until(lambda: mails(sink), what="the delayed email")
    done = client.wait_terminal("d1")
    [email] = [d for d in done["deliveries"] if d["channel"] == "email"]
    assert email["status"] == "sent"
    assert datetime.fromisoformat(email["status_times"]["sending"]) >= due


def test_a_cancelling_event_on_the_subject_means_the_mail_never_arrives(tenant, sink):
    client, _ = tenant
    client.post("/v1/events", json=event("c1", "ticket.reminder", "T-9"))
    client.post("/v1/events", json=event("c2", "ticket.reminder", "T-10"))
    email_of(client, "c1")
    client.post("/v1/events", json=event("c3", "ticket.closed", "T-9"))
    done = client.wait_terminal("c1")
    [email] = [d for d in done["deliveries"] if d["channel"] == "email"]
    assert email["status"] == "skipped"
    assert email["history"][-1]["detail"] == "cancelled by ticket.closed (event c3)"
    wait_until(lambda: subjects(sink) == {"ticket.closed T-9", "ticket.reminder T-10"},
               what="the closing mail and the other subject's reminder")
    time.sleep(AFTER_S)  # past c1's due time too: it stays unsent
    assert sorted(subjects(sink, each=True)) == ["ticket.closed T-9", "ticket.reminder T-10"]


def test_an_unread_item_escalates_to_email_and_a_read_one_does_not(deployment, tenant, sink):
    client, token = tenant
    client.post("/v1/events", json=event("u1", "ticket.urgent", "T-20"))
    client.post("/v1/events", json=event("u2", "ticket.urgent", "T-21"))
    email_of(client, "u2")
    me = httpx.Client(base_url=deployment.url, headers={"Authorization": f"Bearer {token}"})
    with me:
        items = me.get("/v1/me/notifications").json()["items"]
        [read] = [i for i in items if i["subject"]["id"] == "T-21"]
        assert me.post(f"/v1/me/notifications/{read['id']}/read").status_code == 200
    sent = client.wait_terminal("u1")
    [email] = [d for d in sent["deliveries"] if d["channel"] == "email"]
    assert email["status"] == "sent"
    assert email["history"][0]["detail"].startswith(f"planned: email escalation after {AFTER_S}s")
    assert [t["describe"] for t in sent["timing"]] == [f"email escalated after {AFTER_S}s "
                                                      "unless read"]
    skipped = client.wait_terminal("u2")
    [email] = [d for d in skipped["deliveries"] if d["channel"] == "email"]
    assert email["status"] == "skipped"
    assert email["history"][-1]["detail"].startswith("not escalated: read at ")
    assert len(mails(sink)) == 1


def test_two_workers_never_both_send_a_due_timer(tenant, sink):
    client, _ = tenant
    ids = [f"r{i}" for i in range(30)]
    response = client.post("/v1/events:batch", json=[
        event(i, "ticket.reminder", f"T-{i}") for i in ids])
    assert response.status_code in (200, 202), response.text
    for event_id in ids:
        done = client.wait_terminal(event_id)
        [email] = [d for d in done["deliveries"] if d["channel"] == "email"]
        assert email["status"] == "sent" and email["attempts"] == 1
    time.sleep(1)  # a duplicate would still be on its way
    assert len(mails(sink)) == len(ids)


def test_a_timer_whose_workers_and_message_were_lost_is_still_sent_once(deployment, tenant, sink):
    client, _ = tenant
    client.post("/v1/events", json=event("k1", "ticket.reminder", "T-40"))
    assert email_of(client, "k1")["status"] == "pending"  # routed: the row is the timer
    for name in ("worker-1", "worker-2"):
        deployment.kill(name)  # kill -9, holding (or about to hold) its delayed message
    with redis.Redis.from_url(deployment.config["broker_url"]) as broker:
        for key in broker.scan_iter("dramatiq:*"):  # every queued message is gone
            broker.delete(key)
    deployment.start_worker("worker-1", threads=2)
    deployment.start_worker("worker-2", threads=2)
    done = client.wait_terminal("k1", timeout=40)
    [email] = [d for d in done["deliveries"] if d["channel"] == "email"]
    assert email["status"] == "sent" and email["attempts"] == 1
    time.sleep(1)
    assert subjects(sink, each=True) == ["ticket.reminder T-40"]
