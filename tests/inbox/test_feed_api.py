"""The receiver-side feed API (DESIGN §3, §8) on real `herald serve` + `herald worker`
processes over PostgreSQL and Redis: reads, pagination, read marks, stacking,
settings, push registrations, and who may see what."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from router.delivery import access
from router.store import models as m
from tests.harness import Client
from tests.inbox import (
    AVATAR,
    LINKS,
    Inbox,
    deployed,
    event,
    people_tenant,
    publish,
    receivers,
    seed_people,
    user_token,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg):
    with deployed(tmp_path_factory.mktemp("feed"), links=LINKS) as herald:
        yield herald


@pytest.fixture
def tenant(deployment, new_tenant_key):
    """(tenant id, signing secret, service client) of a fresh tenant with people in it."""
    with people_tenant(deployment.url, new_tenant_key) as made:
        yield made


@pytest.fixture
def inbox(deployment, tenant):
    """Open a receiver's inbox: inbox("alice")."""
    with receivers(deployment.url, tenant) as open_inbox:
        yield open_inbox


def _when(stamp: str) -> datetime:
    parsed = datetime.fromisoformat(stamp)
    assert parsed.tzinfo is not None, stamp
    return parsed


# ---------------------------------------------------------------------- reading


def test_an_item_carries_every_field_the_drawer_shows(tenant, inbox):
    _, _, client = tenant
    publish(client, event("T-1", number="#101", title="Broken elevator"))
    [item] = inbox("alice").items()
    assert isinstance(item["id"], int) and isinstance(item["seq"], int)
    assert item["unread"] is True and item["count"] == 1
    assert _when(item["created_at"]) == _when(item["updated_at"])
    assert abs(_when(item["created_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert item["event_type"] == "ticket.created"
    assert item["subject"] == {"kind": "ticket", "id": "T-1", "number": "#101"}
    assert item["title"] == "New ticket #101"
    assert item["message"] == "Max Muster opened ticket #101 “Broken elevator”."
    assert item["actor"] == {"name": "Max Muster", "avatar_url": AVATAR}
    assert item["icon"] == "ticket"
    assert item["link"] == "https://app.herald.test/tickets/T-1?n=#101"


def test_an_actor_known_to_the_directory_shows_its_avatar_when_the_event_has_none(
        tenant, inbox):
    _, _, client = tenant
    publish(client, event("T-3", actor={"id": "max"}),
            event("T-4", actor={"id": "stranger", "name": "Stan"}),
            event("T-5", actor={"id": "max", "name": "Max", "avatar_url": "https://a.test/m"}))
    items = {i["subject"]["id"]: i["actor"] for i in inbox("alice").items()}
    assert items["T-3"] == {"name": "Max Muster", "avatar_url": AVATAR}
    assert items["T-4"] == {"name": "Stan", "avatar_url": None}  # not in the directory
    assert items["T-5"] == {"name": "Max", "avatar_url": "https://a.test/m"}  # the event wins


def test_a_german_receiver_gets_german_text_from_the_same_event(tenant, inbox):
    _, _, client = tenant
    publish(client, event("T-2", number="#202", participants=["greta"],
                          title="Aufzug defekt"))
    [english] = inbox("alice").items()
    [german] = inbox("greta").items()
    assert english["title"] == "New ticket #202"
    assert german["title"] == "Neues Ticket #202"
    assert german["message"] == "Max Muster hat das Ticket #202 „Aufzug defekt“ eröffnet."
    assert german["link"] == english["link"]


def test_an_item_without_an_actor_has_no_actor_and_a_task_gets_the_task_icon(tenant, inbox):
    _, _, client = tenant
    publish(client, event("K-1", "task.created", number="K-1", actor=None, title="Oil change"))
    [item] = inbox("alice").items()
    assert item["actor"] is None
    assert item["icon"] == "task" and item["subject"]["kind"] == "task"
    assert item["title"] == "New task K-1"
    assert item["message"] == "Task K-1 “Oil change” was created."
    assert item["link"] == "https://app.herald.test/tasks/K-1"


def test_the_feed_is_newest_first_and_pages_cover_every_item_once(tenant, inbox):
    _, _, client = tenant
    publish(client, *[event(f"P-{i}") for i in range(7)])
    alice = inbox("alice")
    everything = alice.items()
    assert len(everything) == 7
    stamps = [(_when(i["updated_at"]), i["id"]) for i in everything]
    assert stamps == sorted(stamps, reverse=True)
    seen, cursor, pages = [], None, 0
    while pages == 0 or cursor:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = alice.get("/v1/me/notifications", params=params).json()
        seen += [i["id"] for i in body["items"]]
        cursor, pages = body["next_cursor"], pages + 1
        if pages == 1:  # a new item on top does not shift the pages that follow
            publish(client, event("P-new"))
    assert pages == 3
    assert seen == [i["id"] for i in everything]
    assert alice.items()[0]["subject"]["id"] == "P-new"


def test_a_malformed_cursor_or_limit_is_422(inbox, tenant):
    alice = inbox("alice")
    assert alice.get("/v1/me/notifications", params={"cursor": "%%%"}).status_code == 422
    bad = base64.urlsafe_b64encode(b"yesterday|x").decode()
    assert alice.get("/v1/me/notifications", params={"cursor": bad}).status_code == 422
    assert alice.get("/v1/me/notifications", params={"limit": 0}).status_code == 422
    assert alice.get("/v1/me/notifications", params={"limit": 101}).status_code == 422


def test_reading_one_item_and_then_all_moves_the_unread_count(tenant, inbox):
    _, _, client = tenant
    publish(client, *[event(f"R-{i}") for i in range(3)])
    alice = inbox("alice")
    first, second, third = alice.items()
    assert alice.unread() == 3
    response = alice.read(second["id"])
    assert response.status_code == 200
    assert response.json()["id"] == second["id"] and response.json()["unread"] is False
    assert alice.read(second["id"]).status_code == 200  # reading twice is harmless
    assert alice.unread() == 2
    assert [i["id"] for i in alice.items(unread="true")] == [first["id"], third["id"]]
    response = alice.post("/v1/me/notifications/read-all")
    assert response.status_code == 200 and response.json() == {"unread": 0}
    assert alice.items(unread="true") == []
    assert [i["unread"] for i in alice.items()] == [False, False, False]


def test_a_marked_item_answers_with_the_fields_the_feed_lists_in_the_same_order(tenant, inbox):
    """The feed lists rows and marking answers with the ORM object: one JSON shape."""
    _, _, client = tenant
    publish(client, event("J-1"))
    alice = inbox("alice")
    (listed,) = alice.items()
    marked = alice.read(listed["id"]).json()
    assert list(marked) == list(listed) and list(marked["subject"]) == list(listed["subject"])
    assert marked == {**listed, "unread": False}


# ---------------------------------------------------------------------- stacking


def test_an_unread_item_stacks_moves_to_the_top_and_takes_the_new_text(tenant, inbox):
    _, _, client = tenant
    publish(client, event("S-1", "ticket.message_added", message="first"))
    publish(client, event("S-2", "ticket.message_added", message="elsewhere"))
    alice = inbox("alice")
    before = {i["subject"]["id"]: i for i in alice.items()}["S-1"]
    publish(client, event("S-1", "ticket.message_added", message="second"))
    items = alice.items()
    top = items[0]
    assert len(items) == 2 and alice.unread() == 2
    assert top["id"] == before["id"] and top["count"] == 2
    assert top["seq"] > max(i["seq"] for i in items[1:]) and top["seq"] > before["seq"]
    assert top["message"] == "Max Muster wrote on ticket #S-1: “second”"
    assert _when(top["updated_at"]) > _when(before["updated_at"])
    assert top["created_at"] == before["created_at"]


def test_a_read_item_does_not_stack_the_next_event_starts_a_new_one(tenant, inbox):
    _, _, client = tenant
    publish(client, event("S-3", "ticket.message_added", message="one"),
            event("S-3", "ticket.message_added", message="two"))
    alice = inbox("alice")
    [stacked] = alice.items()
    assert stacked["count"] == 2
    assert alice.read(stacked["id"]).status_code == 200
    publish(client, event("S-3", "ticket.message_added", message="three"))
    fresh, old = alice.items()
    assert fresh["id"] != old["id"] == stacked["id"]
    assert (fresh["count"], fresh["unread"]) == (1, True)
    assert (old["count"], old["unread"]) == (2, False)


def test_another_type_or_another_subject_never_stacks(tenant, inbox):
    _, _, client = tenant
    publish(client, event("S-4", "ticket.message_added", message="hello"))
    publish(client, event("S-4", "ticket.status_changed", status="open"))
    publish(client, event("S-5", "ticket.message_added", message="hello"))
    items = inbox("alice").items()
    assert sorted((i["event_type"], i["subject"]["id"], i["count"]) for i in items) == [
        ("ticket.message_added", "S-4", 1), ("ticket.message_added", "S-5", 1),
        ("ticket.status_changed", "S-4", 1)]


# ---------------------------------------------------------------------- who may read


def test_no_wrong_or_expired_token_is_401(deployment, tenant):
    tenant_id, secret, _ = tenant
    with httpx.Client(base_url=deployment.url) as http:
        for headers in ({}, {"Authorization": "Bearer nonsense"},
                        {"Authorization": "Bearer a.b.c"}, {"Authorization": "Basic abc"}):
            response = http.get("/v1/me/notifications", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == "Bearer"
    expired = user_token(secret, tenant_id, "alice", timedelta(seconds=-5))
    with Inbox(deployment.url, expired) as box:
        response = box.get("/v1/me/notifications/unread-count")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token.expired"


def test_a_token_for_an_unknown_or_inactive_user_is_401(deployment, tenant, inbox):
    tenant_id, secret, client = tenant
    with Inbox(deployment.url, user_token(secret, tenant_id, "nobody")) as box:
        assert box.get("/v1/me/notifications").status_code == 401
    alice = inbox("alice")
    assert alice.get("/v1/me/notifications").status_code == 200
    client.put("/v1/users/alice", json={"id": "alice", "active": False})
    assert alice.get("/v1/me/notifications").status_code == 401


def test_another_tenants_secret_or_users_never_open_this_tenants_feed(deployment, tenant,
                                                                      new_tenant_key):
    tenant_id, _, client = tenant
    publish(client, event("X-1"))
    other_id, other_key, other_secret = new_tenant_key("Other")
    with Client(deployment.url, other_key) as other:
        seed_people(other)
    forged = user_token(other_secret, tenant_id, "alice")  # claims our tenant
    with Inbox(deployment.url, forged) as box:
        response = box.get("/v1/me/notifications")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token.invalid"
    with Inbox(deployment.url, user_token(other_secret, other_id, "alice")) as theirs:
        assert theirs.items() == [] and theirs.unread() == 0


def test_one_user_cannot_read_or_mark_another_users_items(tenant, inbox):
    _, _, client = tenant
    publish(client, event("B-1", creator="bob"), event("A-1", creator="alice"))
    alice, bob = inbox("alice"), inbox("bob")
    [bobs] = bob.items()
    assert [i["subject"]["id"] for i in alice.items()] == ["A-1"]
    response = alice.read(bobs["id"])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert alice.read(10**12).status_code == 404  # same answer as an unknown id
    assert alice.post("/v1/me/notifications/read-all").json() == {"unread": 0}
    assert bob.items()[0]["unread"] is True and bob.unread() == 1


def test_rotation_keeps_old_tokens_valid_for_the_grace_period_only(deployment, tenant, pg):
    tenant_id, old_secret, _ = tenant
    old = user_token(old_secret, tenant_id, "alice")
    result = deployment.cli("tenants", "rotate-secret", tenant_id)
    assert result.returncode == 0, result.stderr
    new_secret = result.stdout.split("new signing secret:")[1].split()[0]
    assert new_secret != old_secret
    fresh = user_token(new_secret, tenant_id, "alice")
    stranger = user_token("hs_" + "0" * 40, tenant_id, "alice")
    with Inbox(deployment.url, old) as a, Inbox(deployment.url, fresh) as b, \
            Inbox(deployment.url, stranger) as c:
        assert a.get("/v1/me/notifications").status_code == 200
        assert b.get("/v1/me/notifications").status_code == 200
        assert c.get("/v1/me/notifications").status_code == 401
        with pg.session() as s:  # the grace period (api.signing_grace_s, 1 day) is over
            s.execute(update(m.Tenant).where(m.Tenant.id == tenant_id).values(
                secret_rotated_at=datetime.now(UTC) - timedelta(days=2)))
        assert a.get("/v1/me/notifications").status_code == 401
        assert b.get("/v1/me/notifications").status_code == 200


def test_a_code_user_reads_only_the_subject_of_their_access_token(deployment, tenant, pg):
    tenant_id, _, client = tenant
    for subject in ("T-10", "T-11"):  # the same subscriber signs up for two tickets in turn
        response = client.put("/v1/subscriptions/cu1", json={
            "id": "cu1", "subject_kind": "ticket", "subject_id": subject, "code_id": "C-1",
            "email": "anon@example.com", "created_by": "employee"})
        assert response.status_code == 204, response.text
        publish(client, event(subject))
    with pg.session() as s:
        token, _ = access.issue(s, tenant_id, "C-1", ("ticket", "T-10"), "cu1",
                                datetime.now(UTC), 14)
    with Inbox(deployment.url, token) as code_user:
        items = code_user.items()
        assert [i["subject"]["id"] for i in items] == ["T-10"]
        assert code_user.unread() == 1
        refused = code_user.get("/v1/me/settings")  # 403: signing in again would not help
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "auth.user_required"
        assert code_user.read(items[0]["id"]).json()["unread"] is False
        with pg.session() as s:
            access.revoke_code(s, tenant_id, "C-1")
        response = code_user.get("/v1/me/notifications")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token.revoked"


def test_clearing_a_codes_notifications_hides_older_items_from_its_code_users_only(
        deployment, tenant, pg, inbox):
    tenant_id, _, client = tenant
    client.put("/v1/subjects/ticket/T-20", json={"kind": "ticket", "id": "T-20",
                                                "code_id": "C-2"})
    client.put("/v1/subscriptions/cu2", json={
        "id": "cu2", "subject_kind": "ticket", "subject_id": "T-20", "code_id": "C-2",
        "email": "anon@example.com", "created_by": "employee"})
    publish(client, event("T-20", "ticket.message_added", message="before"))
    with pg.session() as s:
        token, _ = access.issue(s, tenant_id, "C-2", ("ticket", "T-20"), "cu2",
                                datetime.now(UTC), 14)
    with Inbox(deployment.url, token) as code_user:
        assert len(code_user.items()) == 1
        cleared = client.post("/v1/codes/C-2:clear-notifications")
        assert cleared.status_code == 200
        assert code_user.items() == [] and code_user.unread() == 0
        assert len(inbox("alice").items()) == 1  # employees keep theirs
        publish(client, event("T-20", "ticket.message_added", message="after"))
        [item] = code_user.items()
        assert code_user.unread() == 1
        assert item["message"].endswith("“after”")
        assert item["count"] == 1  # the hidden event does not count
        assert _when(item["created_at"]) > _when(cleared.json()["cutoff"])
    [alices] = inbox("alice").items()
    assert alices["count"] == 2  # employees' items stack on as before


# ---------------------------------------------------------------------- settings


def test_own_settings_round_trip_and_match_the_service_side_view(tenant, inbox):
    _, _, client = tenant
    alice = inbox("alice")
    defaults = alice.get("/v1/me/settings")
    assert defaults.status_code == 200
    assert defaults.json() == {"push": True, "email": True, "customer_notifications": True,
                               "advanced": {}, "quiet_hours": [],
                               "email_digest": {"cadence": "immediate", "at": None}}
    body = {"push": False, "email": True, "customer_notifications": True,
            "advanced": {"all": {"channels": ["browser", "email"], "origin": ["others"],
                                 "strategy": "all"},
                         "ticket.created": {"channels": ["email", "browser"],
                                            "origin": ["me", "others"],
                                            "strategy": "first_success"}},
            "quiet_hours": [{"days": ["sat", "sun"], "from": "23:00", "to": "08:30"}],
            "email_digest": {"cadence": "daily", "at": "07:30"}}
    response = alice.put("/v1/me/settings", json=body)
    assert response.status_code == 200 and response.json() == body
    assert alice.get("/v1/me/settings").json() == body
    assert client.get("/v1/users/alice/settings").json() == body
    assert inbox("bob").get("/v1/me/settings").json()["advanced"] == {}


@pytest.mark.parametrize("bad", [
    {"advanced": {"ticket.nope": {"channels": ["browser"]}}},
    {"advanced": {"all": {"channels": ["fax"]}}},
    {"advanced": {"all": {"channels": ["email", "email"]}}},
    {"advanced": {"all": {"origin": ["them"]}}},
    {"advanced": {"all": {"strategy": "sometimes"}}},
    {"push": "maybe"},
    {"surprise": True},
])
def test_a_bad_settings_row_is_422_and_changes_nothing(inbox, bad):
    alice = inbox("alice")
    before = alice.get("/v1/me/settings").json()
    response = alice.put("/v1/me/settings", json=bad)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["problems"]
    assert alice.get("/v1/me/settings").json() == before


# ---------------------------------------------------------------------- push registrations


P256DH = base64.urlsafe_b64encode(b"\x04" + b"\x11" * 64).decode().rstrip("=")
AUTH = base64.urlsafe_b64encode(b"\x22" * 16).decode().rstrip("=")


def _subscription(endpoint: str, p256dh: str = P256DH, auth: str = AUTH) -> dict:
    return {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth},
            "expirationTime": None}


PUBLIC_PUSH = "https://142.250.74.10/send/abc"  # a public address: no DNS, never contacted


def test_push_subscriptions_need_https_on_a_public_address_or_an_allow_entry(inbox):
    alice = inbox("alice")  # the harness allows 127.0.0.1 (outbound.allow)
    for endpoint in (PUBLIC_PUSH, "http://127.0.0.1:9999/push/1"):
        response = alice.post("/v1/me/push-subscriptions", json=_subscription(endpoint))
        assert response.status_code == 201, (endpoint, response.text)
        assert response.json() == {"endpoint": endpoint, "registered": True}
    assert alice.post("/v1/me/push-subscriptions", json=_subscription(
        PUBLIC_PUSH)).status_code == 201  # idempotent
    for endpoint in ("http://push.example.com/send/abc", "http://localhost:9999/push/2",
                     "https://10.1.2.3/push/3", "ftp://127.0.0.1/x", "not a url"):
        response = alice.post("/v1/me/push-subscriptions", json=_subscription(endpoint))
        assert response.status_code == 422, endpoint
        assert [p["path"] for p in response.json()["error"]["problems"]] == ["endpoint"]
    ref = {"endpoint": PUBLIC_PUSH}
    assert alice.delete("/v1/me/push-subscriptions", json=ref).status_code == 204
    assert alice.delete("/v1/me/push-subscriptions", json=ref).status_code == 404


@pytest.mark.parametrize("p256dh, auth", [
    (base64.urlsafe_b64encode(b"\x04" + b"\x11" * 63).decode().rstrip("="), AUTH),  # 64 bytes
    (base64.urlsafe_b64encode(b"\x05" + b"\x11" * 64).decode().rstrip("="), AUTH),  # not 0x04
    (P256DH, base64.urlsafe_b64encode(b"\x22" * 15).decode().rstrip("=")),  # 15 bytes
    (P256DH, "short"),
    ("x" * 87, AUTH),  # not base64url of a point
])
def test_push_subscription_keys_of_the_wrong_length_are_422(inbox, p256dh, auth):
    response = inbox("alice").post("/v1/me/push-subscriptions", json=_subscription(
        PUBLIC_PUSH, p256dh, auth))
    assert response.status_code == 422, response.text


def test_app_devices_register_validate_and_unregister(inbox, pg, tenant):
    tenant_id = tenant[0]
    alice = inbox("alice")
    token = "fcm-token-" + "a" * 40
    response = alice.post("/v1/me/devices", json={"token": token, "platform": "ios"})
    assert response.status_code == 201 and response.json()["registered"] is True
    assert alice.post("/v1/me/devices", json={"token": token}).status_code == 201
    with pg.session() as s:
        rows = s.query(m.PushTarget).filter_by(tenant_id=tenant_id, user_id="alice").all()
    assert [(r.kind, r.endpoint) for r in rows] == [("fcm", token)]
    assert alice.post("/v1/me/devices", json={"token": "short"}).status_code == 422
    assert alice.post("/v1/me/devices", json={}).status_code == 422
    assert alice.delete("/v1/me/devices", json={"token": token}).status_code == 204
    assert alice.delete("/v1/me/devices", json={"token": token}).status_code == 404
