"""Digests, throttles and quiet-hours digests end to end: `herald serve` and two `herald
worker` processes, real PostgreSQL, Redis and SMTP, rule files with windows of seconds.
A digest is one mail listing its events; each event is in exactly one mail."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from router.core.security import mint_user_token
from tests import factories as f
from tests.harness import Client, Herald, wait_until
from tests.ruleset.test_timing import rules_with
from tests.servers.smtp import SmtpSink

WINDOW_S = 5
PER_S = 8
FOLDING = f"""events:
  ticket.note:
    {{subject: ticket, title: Note, digest: {{window: {WINDOW_S}s, key: subject, channels: [email]}}}}
  ticket.ping:
    {{subject: ticket, title: Ping, throttle: {{max: 2, per: {PER_S}s, key: subject, channels: [email]}}}}
  ticket.buzz:
    {{subject: ticket, title: Buzz, throttle: {{max: 1, per: {PER_S}s, key: subject, channels: [push]}}}}
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg, sink, vapid):
    rules = rules_with(tmp_path_factory.mktemp("fold-rules"), FOLDING)
    herald = Herald(tmp_path_factory.mktemp("fold"), smtp={"port": sink.port},
                    rules_path=str(rules),
                    push={"vapid_private_key": vapid[0], "vapid_public_key": vapid[1]})
    herald.start_api()
    herald.start_worker("worker-1", threads=2)
    herald.start_worker("worker-2", threads=2)  # two processes race for every due digest
    yield herald
    herald.stop()


ADDRESS = ""  # each test's own (a straggler of the test before cannot count)


@pytest.fixture
def client(deployment, new_tenant_key, sink, web_push):
    global ADDRESS
    sink.clear()
    web_push.clear()
    tenant, key, secret = new_tenant_key("Fold Co")
    ADDRESS = f"ann-{uuid.uuid4().hex[:8]}@fold.example"
    with Client(deployment.url, key) as c:
        c.put("/v1/users/ann", json={"id": "ann", "name": "Ann", "email": ADDRESS,
                                     "time_zone": "Europe/Berlin"})
        c.token = mint_user_token(secret, tenant, "ann", timedelta(hours=1))
        yield c


def event(etype: str, subject: str, title: str) -> dict:
    return {"id": uuid.uuid4().hex, "type": etype,
            "data": {"title": title, "message": f"says {title}"},
            "subject": {"kind": "ticket", "id": subject, "number": f"#{subject}",
                        "creator_id": "ann"}}


def mails(sink: SmtpSink) -> list:
    return [msg for msg in sink.messages if msg["To"] == ADDRESS]


def text_of(mail) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()


def listed(mail, titles: list[str]) -> list[str]:
    """Which of these event titles the mail lists (a digest) or is about (one event)."""
    body = text_of(mail)
    return [t for t in titles if re.search(rf"\b{re.escape(t)}\b", body)]


def email_of(client: Client, event_id: str) -> dict:
    [email] = [d for d in client.wait_terminal(event_id)["deliveries"]
               if d["channel"] == "email"]
    return email


def test_events_of_one_subject_inside_the_window_arrive_as_one_digest_mail(client, sink):
    first = event("ticket.note", "T-1", "note-a")
    started = time.monotonic()
    client.post("/v1/events", json=first)
    planned = wait_until(lambda: [d for d in client.activity(first["id"])["deliveries"]
                                  if d["channel"] == "email"], what="the first email row")
    assert planned[0]["status"] == "pending"
    assert "opens a digest window closing" in planned[0]["history"][-1]["detail"]
    rest = [event("ticket.note", "T-1", f"note-{c}") for c in "bcd"]
    other = event("ticket.note", "T-2", "other-e")
    for body in [*rest, other]:
        assert client.post("/v1/events", json=body).status_code == 202
    joined = wait_until(lambda: [d for d in client.activity(rest[-1]["id"])["deliveries"]
                                 if d["channel"] == "email"], what="the last email row")
    assert "joins the digest window closing" in joined[0]["history"][-1]["detail"]
    wait_until(lambda: re.fullmatch(
        r"digest window closes \d\d:\d\d:\d\d UTC \(4 events so far\)",
        client.activity(first["id"])["deliveries"][0]["waiting"] or ""),
        timeout=WINDOW_S - 1, what="the pending digest counting its four events")
    while time.monotonic() - started < WINDOW_S - 0.5:
        assert mails(sink) == [], "a digest went out before its window closed"
        time.sleep(0.1)
    wait_until(lambda: len(mails(sink)) >= 2, what="the digest of T-1 and the mail of T-2")
    time.sleep(1)  # nothing else comes
    titles = ["note-a", "note-b", "note-c", "note-d", "other-e"]
    by_subject = {m["Subject"]: listed(m, titles) for m in mails(sink)}
    assert by_subject == {"4 new notifications": ["note-a", "note-b", "note-c", "note-d"],
                          "other-e": ["other-e"]}, by_subject
    [digest] = [m for m in mails(sink) if m["Subject"] == "4 new notifications"]
    for body in [first, *rest]:
        email = email_of(client, body["id"])
        assert email["status"] == "sent"
        assert "in a digest of 4 events" in email["history"][-1]["detail"]
    assert re.search(r"Here is what happened \(4 events\)", text_of(digest))
    metrics = client.get("/metrics").text  # the workers' timer figures, through the API
    released = re.search(r'herald_timers_released_total\{channel="email",kind="digest"\} '
                         r'([0-9.]+)', metrics)
    assert released and float(released.group(1)) >= 5, "the five digested rows were released"
    assert re.search(r'herald_timer_lateness_seconds_bucket\{channel="email",le="1.0"\} '
                     r'[1-9]', metrics), "released within a second of their due time"
    assert re.search(r"herald_timers_pending [0-9.]+", metrics)


def test_a_throttle_sends_the_first_ones_and_folds_the_rest_into_one_digest(client, sink):
    bodies = [event("ticket.ping", "T-3", f"ping-{i}") for i in range(5)]
    started = time.monotonic()
    for body in bodies:
        assert client.post("/v1/events", json=body).status_code == 202
    titles = [b["data"]["title"] for b in bodies]
    two = wait_until(lambda: len(mails(sink)) >= 2 and mails(sink), what="the first two pings")
    assert time.monotonic() - started < PER_S - 0.5
    time.sleep(0.5)
    assert len(mails(sink)) == 2, "more than two went out inside the throttle's window"
    alone = sorted(m["Subject"] for m in two)  # the first two routed (two workers route)
    wait_until(lambda: len(mails(sink)) >= 3, timeout=PER_S + 10, what="the folded digest")
    time.sleep(1)
    assert len(mails(sink)) == 3
    [digest] = [m for m in mails(sink) if m["Subject"] == "3 new notifications"]
    assert sorted(alone + listed(digest, titles)) == titles  # each ping in exactly one mail
    folded = [email_of(client, b["id"]) for b in bodies if b["data"]["title"] not in alone]
    assert all(f"throttled (2 per {PER_S}s sent already): folded into the digest" in
               e["history"][1]["detail"] for e in folded), [e["history"] for e in folded]


def test_quiet_hours_fold_everything_deferred_into_one_digest_at_the_window_end(client, sink):
    window = f.quiet_window_around(datetime.now(UTC), "Europe/Berlin", 600, 4)
    response = client.put("/v1/users/ann/settings", json={"quiet_hours": [window]})
    assert response.status_code == 200, response.text
    bodies = [event("ticket.status_changed", "T-5", "quiet-1"),
              event("ticket.note", "T-6", "quiet-2"), event("ticket.ping", "T-7", "quiet-3")]
    for body in bodies:
        assert client.post("/v1/events", json=body).status_code == 202
    deferred = email_of_pending(client, bodies[1]["id"])
    assert "deferred by quiet hours until" in deferred["history"][-1]["detail"]
    [mail] = wait_until(lambda: mails(sink), timeout=15, what="the quiet-hours digest")
    time.sleep(1)
    assert len(mails(sink)) == 1
    assert mail["Subject"] == "3 new notifications"
    assert listed(mail, ["quiet-1", "quiet-2", "quiet-3"]) == ["quiet-1", "quiet-2", "quiet-3"]


def email_of_pending(client: Client, event_id: str) -> dict:
    def found() -> dict | None:
        rows = [d for d in client.activity(event_id)["deliveries"] if d["channel"] == "email"]
        return rows[0] if rows else None
    return wait_until(found, what=f"the email row of {event_id}")


def test_an_hourly_cadence_holds_the_mail_until_the_next_local_hour(client, sink):
    response = client.put("/v1/users/ann/settings",
                          json={"email_digest": {"cadence": "hourly"}})
    assert response.status_code == 200, response.text
    assert response.json()["email_digest"] == {"cadence": "hourly", "at": None}
    body = event("ticket.status_changed", "T-8", "cadence-1")
    client.post("/v1/events", json=body)
    row = email_of_pending(client, body["id"])
    due = datetime.fromisoformat(row["next_attempt_at"])
    local = due.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert (local.minute, local.second) == (0, 0)
    assert timedelta(0) < due - datetime.now(UTC) <= timedelta(hours=1)
    assert "waits for the receiver's digest at" in row["history"][-1]["detail"]
    assert "(hourly digest)" in row["history"][-1]["detail"]


@pytest.mark.parametrize(("digest", "field", "says"), [
    ({"cadence": "daily"}, "email_digest.at", "needs 'at'"),
    ({"cadence": "hourly", "at": "08:00"}, "email_digest.at", "only for the daily cadence"),
    ({"cadence": "weekly"}, "email_digest.cadence", ""),
    ({"cadence": "daily", "at": "25:00"}, "email_digest.at", ""),
])
def test_a_bad_cadence_is_a_422_naming_the_field_and_nothing_is_saved(client, digest, field,
                                                                      says):
    response = client.put("/v1/users/ann/settings", json={"email_digest": digest})
    assert response.status_code == 422, response.text
    problems = response.json()["error"]["problems"]
    assert any(p["path"] == field and says in p["message"] for p in problems), problems
    assert client.get("/v1/users/ann/settings").json()["email_digest"]["cadence"] == "immediate"


def test_a_throttled_push_folds_the_rest_into_one_digest_push(deployment, client, web_push):
    me = {"Authorization": f"Bearer {client.token}"}
    registered = client.post("/v1/me/push-subscriptions", json=web_push.new_subscription(),
                             headers=me)
    assert registered.status_code == 201, registered.text
    bodies = [event("ticket.buzz", "T-9", f"buzz-{i}") for i in range(3)]
    for body in bodies:
        assert client.post("/v1/events", json=body).status_code == 202
    [first] = web_push.wait_for(1, timeout=20)
    time.sleep(1)
    assert len(web_push.delivered) == 1, "a second push went out inside the throttle's window"
    pushes = web_push.wait_for(2, timeout=PER_S + 15)
    digest = pushes[1].json()
    assert digest["title"] == "2 new notifications", digest
    alone = first.json()["title"]
    folded = sorted({b["data"]["title"] for b in bodies} - {alone})
    assert digest["body"] in {f"says {t}" for t in folded}, digest  # the latest folded one
    time.sleep(1)
    assert len(web_push.delivered) == 2
