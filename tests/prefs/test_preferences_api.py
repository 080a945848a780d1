"""The preference center's API (issue #16) on real `herald serve` + `herald worker`
processes over PostgreSQL and Redis: the event types a receiver can get with titles in
their language, where each row's value comes from, the user's own time zone, a code
user's subscription and its unsubscribe, the settings refusals the component shows, and
that every answer is the caller's own (other users, other tenants)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from router.store import models as m
from tests.harness import Client
from tests.inbox import Inbox, deployed, event, people_tenant, publish, receivers, user_token
from tests.prefs import CODE_TYPES, problems, seed_people, sign_up_code_user


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg):
    with deployed(tmp_path_factory.mktemp("prefs")) as herald:
        yield herald


@pytest.fixture
def tenant(deployment, new_tenant_key):
    """(tenant id, signing secret, service client) of a fresh tenant with people in it."""
    with people_tenant(deployment.url, new_tenant_key, seed_people) as made:
        yield made


@pytest.fixture
def me(deployment, tenant):
    """Open a receiver's own client: me("alice")."""
    with receivers(deployment.url, tenant) as open_as:
        yield open_as


def _preferences(client: Inbox) -> dict:
    response = client.get("/v1/me/preferences")
    assert response.status_code == 200, response.text
    return response.json()


def _rows(document: dict) -> dict[str, dict]:
    return {row["key"]: row for row in document["rows"]}


def test_a_user_sees_the_types_they_can_get_grouped_by_subject_with_titles_in_their_language(me):
    greta = _preferences(me("greta"))
    assert greta["receiver"] == {"kind": "employee", "id": "greta", "name": "Greta Graf",
                                 "language": "de"}
    titles = {t["type"]: t["title"] for t in greta["event_types"]}
    assert titles["ticket.created"] == "Neues Ticket"
    assert titles["video_session.direct_call"] == "Eingehender Anruf"
    assert not set(CODE_TYPES) & set(titles)  # only admins and moderators hear of codes
    kinds = [t["subject"] for t in greta["event_types"]]
    assert kinds == sorted(kinds, key=["ticket", "task", "video_session"].index)  # grouped
    assert [t["critical"] for t in greta["event_types"] if t["type"] ==
            "video_session.direct_call"] == [True]
    ada = _preferences(me("ada"))
    assert set(CODE_TYPES) <= {t["type"] for t in ada["event_types"]}
    assert {t["type"]: t["title"] for t in ada["event_types"]}["ticket.created"] == "New ticket"
    assert [r["key"] for r in ada["rows"]] == ["all", *(t["type"] for t in ada["event_types"])]


def test_each_row_says_what_applies_and_whether_it_is_the_users_row_the_all_row_or_the_default(me):
    alice = me("alice")
    before = _rows(_preferences(alice))
    assert {row["source"] for row in before.values()} == {"default"}
    direct = before["video_session.direct_call"]
    assert direct["effective"] == direct["default"] == {
        "channels": ["browser", "push"], "origin": ["others"], "strategy": "first_success"}
    response = alice.put("/v1/me/settings", json={"advanced": {
        "all": {"channels": ["email", "browser"], "origin": ["me", "others"]},
        "ticket.created": {"channels": ["push"], "strategy": "first_success"}}})
    assert response.status_code == 200, response.text
    after = _rows(_preferences(alice))
    assert after["ticket.created"]["source"] == "own"
    assert after["ticket.created"]["effective"] == {
        "channels": ["push"], "origin": ["others"], "strategy": "first_success"}
    assert after["all"]["source"] == "own"
    for key in ("ticket.assigned", "video_session.direct_call"):  # the all row wins over both
        assert after[key]["source"] == "all"
        assert after[key]["effective"] == {"channels": ["email", "browser"],
                                           "origin": ["me", "others"], "strategy": "all"}
    assert after["video_session.direct_call"]["default"] == direct["default"]  # to reset to
    assert after["all"]["default"] == {"channels": ["browser", "push", "email"],
                                       "origin": ["others"], "strategy": "all"}


def test_a_customer_gets_their_receiver_kind_and_their_customer_switch_round_trips(me):
    carla = me("carla")
    document = _preferences(carla)
    assert document["receiver"]["kind"] == "customer"
    assert "ticket.created" in {t["type"] for t in document["event_types"]}
    response = carla.put("/v1/me/settings", json={"customer_notifications": False})
    assert response.status_code == 200, response.text
    assert carla.get("/v1/me/settings").json()["customer_notifications"] is False


def test_a_user_sets_their_own_time_zone_which_a_directory_upsert_without_one_keeps(
        me, tenant, pg):
    tenant_id, _, client = tenant
    with pg.session() as s:
        s.execute(update(m.Tenant).where(m.Tenant.id == tenant_id).values(
            default_time_zone="America/New_York"))
    alice = me("alice")
    assert alice.get("/v1/me/time-zone").json() == {
        "time_zone": None, "effective": "America/New_York", "default": "America/New_York"}
    response = alice.put("/v1/me/time-zone", json={"time_zone": "Europe/Berlin"})
    assert response.json() == {"time_zone": "Europe/Berlin", "effective": "Europe/Berlin",
                               "default": "America/New_York"}
    assert _preferences(alice)["time_zone"]["effective"] == "Europe/Berlin"
    # the host's nightly directory sync does not know zones: it leaves the user's own
    assert client.put("/v1/users/alice", json={"name": "Alice A."}).status_code == 204
    assert alice.get("/v1/me/time-zone").json()["time_zone"] == "Europe/Berlin"
    assert client.put("/v1/users/alice", json={"time_zone": "Asia/Tokyo"}).status_code == 204
    assert alice.get("/v1/me/time-zone").json()["time_zone"] == "Asia/Tokyo"  # said: it wins
    response = alice.put("/v1/me/time-zone", json={"time_zone": None})
    assert response.json()["effective"] == "America/New_York"


def test_an_unknown_time_zone_is_a_422_naming_the_field_and_changes_nothing(me):
    alice = me("alice")
    alice.put("/v1/me/time-zone", json={"time_zone": "Europe/Berlin"})
    refused = problems(alice.put("/v1/me/time-zone", json={"time_zone": "Europe/Berlln"}))
    assert "unknown time zone 'Europe/Berlln'" in refused["time_zone"]
    assert problems(alice.put("/v1/me/time-zone", json={"zone": "UTC"})).keys() >= {"zone"}
    assert alice.get("/v1/me/time-zone").json()["time_zone"] == "Europe/Berlin"


def test_the_zones_offered_are_iana_names_the_api_accepts(me):
    zones = _preferences(me("alice"))["zones"]
    assert zones[0] == "UTC" and "Europe/Berlin" in zones and "America/Argentina/Salta" in zones
    assert not [z for z in zones if z.startswith(("Etc/", "US/"))]
    alice = me("alice")
    for zone in (zones[1], zones[len(zones) // 2], zones[-1]):
        assert alice.put("/v1/me/time-zone", json={"time_zone": zone}).status_code == 200


def test_overlapping_quiet_hours_and_a_daily_digest_without_a_time_are_refused_whole(me):
    alice = me("alice")
    saved = {"email": False, "quiet_hours": [{"days": ["mon"], "from": "22:00", "to": "07:00"}],
             "email_digest": {"cadence": "hourly", "at": None}}
    assert alice.put("/v1/me/settings", json=saved).status_code == 200
    refused = problems(alice.put("/v1/me/settings", json={**saved, "email": True, "quiet_hours": [
        {"days": ["mon"], "from": "22:00", "to": "07:00"},
        {"days": ["tue"], "from": "06:00", "to": "08:00"}]}))
    assert refused == {"quiet_hours.1.from": "overlaps quiet_hours.0 (the window starting tue)"}
    for digest in ({"cadence": "daily"}, {"cadence": "daily", "at": None}):
        refused = problems(alice.put("/v1/me/settings", json={**saved, "email_digest": digest}))
        assert "a daily digest needs 'at'" in refused["email_digest.at"]
    back = alice.get("/v1/me/settings").json()
    assert (back["email"], back["quiet_hours"], back["email_digest"]) == (
        False, saved["quiet_hours"], {"cadence": "hourly", "at": None})


def test_a_code_user_sees_their_one_subscription_and_unsubscribing_stops_its_notifications(
        deployment, tenant, pg):
    tenant_id, _, client = tenant
    token = sign_up_code_user(client, pg, tenant_id)
    other = sign_up_code_user(client, pg, tenant_id, "cu2")  # a second visitor, same ticket
    with Inbox(deployment.url, token) as visitor, Inbox(deployment.url, other) as second:
        shown = visitor.get("/v1/me/subscription")
        assert shown.status_code == 200, shown.text
        assert shown.json() == {"id": "cu1", "subject": {"kind": "ticket", "id": "T-4711",
                                                         "number": "#4711"},
                                "channels": ["email"], "email": "v•••r@example.com",
                                "active": True, "language": "de"}
        publish(client, event("T-4711"))
        assert len(visitor.items()) == len(second.items()) == 1
        assert visitor.delete("/v1/me/subscription").status_code == 204
        assert visitor.delete("/v1/me/subscription").status_code == 204  # idempotent
        assert visitor.get("/v1/me/subscription").json()["active"] is False
        assert second.get("/v1/me/subscription").json()["active"] is True
        [routed] = publish(client, event("T-4711", "ticket.status_changed", status="closed"))
        receivers = {(r["kind"], r["id"]) for r in client.activity(routed)["receivers"]}
        assert ("code_user", "cu2") in receivers and ("code_user", "cu1") not in receivers
        assert len(visitor.items()) == 1 and len(second.items()) == 2


def test_each_kind_of_credential_reaches_only_its_own_view(me, deployment, tenant, pg):
    tenant_id, _, client = tenant
    with Inbox(deployment.url, sign_up_code_user(client, pg, tenant_id)) as visitor:
        for path in ("/v1/me/preferences", "/v1/me/time-zone"):
            refused = visitor.get(path)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "auth.user_required"
        assert visitor.put("/v1/me/time-zone", json={"time_zone": "UTC"}).status_code == 403
    for call in (me("alice").get, me("alice").delete):
        refused = call("/v1/me/subscription")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "auth.code_user_required"
    with Inbox(deployment.url, "not-a-token") as stranger:
        assert stranger.get("/v1/me/preferences").status_code == 401


def test_settings_and_zones_stay_with_their_user_and_tenant(me, deployment, new_tenant_key):
    alice, greta = me("alice"), me("greta")
    alice.put("/v1/me/time-zone", json={"time_zone": "Asia/Tokyo"})
    alice.put("/v1/me/settings", json={"advanced": {"all": {"channels": ["browser"]}}})
    other_id, other_key, other_secret = new_tenant_key("Other")
    with Client(deployment.url, other_key) as other_client:
        seed_people(other_client)  # another tenant's alice
    with Inbox(deployment.url, user_token(other_secret, other_id, "alice")) as other_alice:
        assert other_alice.get("/v1/me/time-zone").json()["time_zone"] is None
        assert {r["source"] for r in _preferences(other_alice)["rows"]} == {"default"}
        other_alice.put("/v1/me/time-zone", json={"time_zone": "Europe/Paris"})
    assert greta.get("/v1/me/time-zone").json()["time_zone"] is None
    assert {r["source"] for r in _preferences(greta)["rows"]} == {"default"}
    assert alice.get("/v1/me/time-zone").json()["time_zone"] == "Asia/Tokyo"
    assert _rows(_preferences(alice))["ticket.created"]["source"] == "all"


def test_openapi_documents_the_preference_endpoints(deployment):
    import httpx

    document = httpx.get(f"{deployment.url}/openapi.json").json()
    paths = document["paths"]
    assert set(paths["/v1/me/preferences"]) == {"get"}
    assert set(paths["/v1/me/time-zone"]) == {"get", "put"}
    assert set(paths["/v1/me/subscription"]) == {"get", "delete"}
    schemas = document["components"]["schemas"]
    assert schemas["Row"]["properties"]["source"]["$ref"].endswith("/PrefsSource")
    assert schemas["PrefsSource"]["enum"] == ["own", "all", "default"]
    assert {"403", "422"} <= set(paths["/v1/me/time-zone"]["put"]["responses"])
    zones = schemas["TimeZoneIn"]["properties"]["time_zone"]["enum"]  # what check_zone takes
    assert {"Europe/Berlin", "US/Eastern", None} <= set(zones) and "Europe/Berlln" not in zones


def test_rows_for_types_the_catalogue_lost_are_named_so_the_component_can_leave_them_out(
        me, tenant, pg):
    tenant_id, _, _ = tenant
    alice = me("alice")
    alice.put("/v1/me/settings", json={"advanced": {"ticket.created": {"channels": ["email"]}}})
    with pg.session() as s:  # as a rule set without this type leaves it behind
        s.execute(update(m.UserSettings).where(
            m.UserSettings.tenant_id == tenant_id, m.UserSettings.user_id == "alice").values(
            advanced={"ticket.created": {"channels": ["email"]},
                      "invoice.paid": {"channels": ["push"]}}))
    assert _preferences(alice)["unknown_rows"] == ["invoice.paid"]
    assert _preferences(me("greta"))["unknown_rows"] == []
    stored = alice.get("/v1/me/settings").json()
    refused = problems(alice.put("/v1/me/settings", json=stored))
    assert refused == {"advanced.invoice.paid": "not 'all' nor a known event type"}
    del stored["advanced"]["invoice.paid"]
    assert alice.put("/v1/me/settings", json=stored).status_code == 200
