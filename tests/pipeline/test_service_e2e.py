"""The delivery pipeline end to end: HTTP API + `herald worker` subprocesses on
the real PostgreSQL and Redis, and the embedded mode on SQLite."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from router.store import models as m
from tests.harness import Client, Herald, wait_until

pytestmark = pytest.mark.slow

EMPLOYEES = ["sup1", "sup2", "dep1", "creator", "other"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg, request):
    herald = Herald(tmp_path_factory.mktemp("herald"), smtp={"port": 1})
    herald.start_api()
    herald.start_worker()
    yield herald
    herald.stop()


@pytest.fixture
def tenant(deployment, new_tenant_key):
    tenant_id, key, _ = new_tenant_key()
    with Client(deployment.url, key) as client:
        seed_directory(client)
        yield tenant_id, client


def seed_directory(client: Client) -> None:
    for uid in EMPLOYEES:  # no email addresses: these tests watch feed items only
        assert client.put(f"/v1/users/{uid}", json={"id": uid, "name": uid.title()}
                          ).status_code == 204
    for uid in ("cust1", "cust2"):
        client.put(f"/v1/users/{uid}", json={"id": uid, "kind": "customer", "org_id": "org1"})
    client.put("/v1/users/cust3", json={"id": "cust3", "kind": "customer", "org_id": "org2"})
    client.put("/v1/departments/support", json={"id": "support", "members": ["dep1"]})
    response = client.put("/v1/templates/tpl", json={"id": "tpl", "groups": {
        "notification_receivers": [
            {"id": "g1", "members": [{"kind": "user", "id": "sup1"},
                                     {"kind": "department", "id": "support"}]},
            {"id": "g2", "members": [{"kind": "user", "id": "sup2"}]}]}})
    assert response.status_code == 204, response.text


def ticket(event_id: str | None = None, **subject) -> dict:
    return {"id": event_id or uuid.uuid4().hex, "type": "ticket.created",
            "actor": {"id": "cust1", "kind": "customer", "name": "Cust One"},
            "subject": {"kind": "ticket", "id": subject.pop("id", "T-1"), "number": "#1",
                        "template_id": "tpl", "creator_id": "creator", "customer_org_id": "org1",
                        **subject},
            "data": {"title": "Broken elevator"}}


def feed_receivers(pg, tenant_id: str) -> list[str]:
    with pg.session() as s:
        return sorted(s.scalars(select(m.FeedItem.receiver_id).where(
            m.FeedItem.tenant_id == tenant_id)))


def test_ticket_reaches_exactly_template_receivers_creator_and_customers(tenant, pg):
    tenant_id, client = tenant
    response = client.post("/v1/events", json=ticket("e-1"))
    assert response.status_code == 202, response.text
    assert response.json()["id"] == "e-1"
    act = client.wait_terminal("e-1")
    assert {r["id"] for r in act["receivers"]} == {"sup1", "dep1", "creator", "cust2"}
    assert feed_receivers(pg, tenant_id) == ["creator", "cust2", "dep1", "sup1"]
    assert {d["channel"] for d in act["deliveries"]} == {"browser"}
    # browser under `all` with no inbox open: settled at routing, the feed item is the
    # delivery (no attempt was made, nothing is left to send)
    assert all(d["status"] == "sent" and d["attempts"] == 0 for d in act["deliveries"])
    assert all({"pending", "sent"} <= set(d["status_times"]) for d in act["deliveries"])
    assert all(d["history"][-1]["detail"].startswith("no open session")
               for d in act["deliveries"])
    assert any(r["id"] == "cust1" and "origin" in r["reason"] for r in act["dropped"])


def test_republishing_the_same_event_changes_nothing(tenant, pg):
    tenant_id, client = tenant
    first = client.post("/v1/events", json=ticket("dup-1"))
    client.wait_terminal("dup-1")
    again = client.post("/v1/events", json=ticket("dup-1"))
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    with pg.session() as s:
        items = s.scalar(select(func.count()).select_from(m.FeedItem)
                         .where(m.FeedItem.tenant_id == tenant_id))
        counts = s.scalars(select(m.FeedItem.count).where(m.FeedItem.tenant_id == tenant_id))
        deliveries = s.scalar(select(func.count()).select_from(m.Delivery)
                              .where(m.Delivery.tenant_id == tenant_id))
    # browser only and no inbox open: the 4 deliveries were settled at routing (no rows)
    assert items == 4 and set(counts) == {1} and deliveries == 0
    assert len(client.activity("dup-1")["deliveries"]) == 4


def test_batch_publish_routes_every_event(tenant, pg):
    tenant_id, client = tenant
    events = [ticket(f"b-{i}", id=f"T-{i}") for i in range(50)]
    response = client.post("/v1/events:batch", json=events)
    assert response.status_code == 202, response.text
    assert [a["id"] for a in response.json()["accepted"]] == [e["id"] for e in events]
    wait_until(lambda: len(feed_receivers(pg, tenant_id)) == 200, 30, what="200 feed items")
    client.wait_terminal("b-49")


def test_an_id_given_twice_in_one_batch_is_published_once(tenant, pg):
    tenant_id, client = tenant
    response = client.post("/v1/events:batch", json=[ticket("twice"), ticket("other", id="T-2"),
                                                      ticket("twice")])
    assert response.status_code == 202, response.text
    assert [(a["id"], a["duplicate"]) for a in response.json()["accepted"]] == [
        ("twice", False), ("other", False), ("twice", True)]
    client.wait_terminal("twice")
    with pg.session() as s:
        assert s.scalar(select(func.count()).select_from(m.EventRow).where(
            m.EventRow.tenant_id == tenant_id)) == 2


def test_a_second_event_on_the_same_subject_stacks_the_unread_item(tenant, pg):
    tenant_id, client = tenant
    client.post("/v1/events", json=ticket("s-1", id="T-77"))
    client.wait_terminal("s-1")
    client.post("/v1/events", json=ticket("s-2", id="T-77"))
    client.wait_terminal("s-2")
    with pg.session() as s:
        rows = s.execute(select(m.FeedItem.receiver_id, m.FeedItem.count).where(
            m.FeedItem.tenant_id == tenant_id, m.FeedItem.subject_id == "T-77")).all()
    assert sorted(rows) == [("creator", 2), ("cust2", 2), ("dep1", 2), ("sup1", 2)]


def test_explain_returns_the_plan_and_writes_nothing(tenant, pg):
    tenant_id, client = tenant
    response = client.post("/v1/events:explain", json=ticket("x-1"))
    assert response.status_code == 200, response.text
    plan = response.json()
    assert {r["id"] for r in plan["receivers"]} == {"sup1", "dep1", "creator", "cust2"}
    assert "ticket-notification-receivers" in {r["id"] for r in plan["matched_rules"]}
    assert client.get("/v1/events/x-1").status_code == 404
    with pg.session() as s:
        assert s.scalar(select(func.count()).select_from(m.EventRow)
                        .where(m.EventRow.tenant_id == tenant_id)) == 0


@pytest.mark.parametrize("body, paths", [
    ({"id": "bad", "type": "ticket.nope", "subject": {"kind": "ticket", "id": "1", "number": "1"}},
     {"type"}),
    ({"id": "", "type": "ticket.created", "subject": {"kind": "boat", "id": "1"}},
     {"id", "subject.kind", "subject.number"}),
    ({"type": "ticket.created", "subject": {"kind": "ticket", "id": "1", "number": "1"},
      "surprise": 1}, {"id", "surprise"}),
])
def test_malformed_events_get_422_naming_every_bad_field_and_write_nothing(tenant, pg, body,
                                                                           paths):
    tenant_id, client = tenant
    response = client.post("/v1/events", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert {p["path"] for p in error["problems"]} == paths
    with pg.session() as s:
        assert s.scalar(select(func.count()).select_from(m.EventRow)
                        .where(m.EventRow.tenant_id == tenant_id)) == 0


def test_a_bad_event_in_a_batch_refuses_the_batch(tenant, pg):
    tenant_id, client = tenant
    batch = [ticket("ok-1"), {"id": "bad", "type": "nope"}]
    response = client.post("/v1/events:batch", json=batch)
    assert response.status_code == 422
    assert {p["path"] for p in response.json()["error"]["problems"]} >= {"1.type", "1.subject"}
    with pg.session() as s:
        assert s.scalar(select(func.count()).select_from(m.EventRow)
                        .where(m.EventRow.tenant_id == tenant_id)) == 0


def test_no_key_or_a_wrong_key_is_401(deployment):
    with Client(deployment.url, "wrong") as wrong:
        assert wrong.post("/v1/events", json=ticket()).status_code == 401
    import httpx
    response = httpx.get(f"{deployment.url}/v1/events/x")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.required"


def test_another_tenants_ids_answer_404_like_unknown_ids(tenant, deployment, new_tenant_key):
    _, client = tenant
    client.post("/v1/events", json=ticket("mine-1"))
    client.wait_terminal("mine-1")
    _, other_key, _ = new_tenant_key("Other")
    with Client(deployment.url, other_key) as other:
        _walk_foreign_ids(other)
    assert client.get("/v1/users/sup1/settings").status_code == 200


def _walk_foreign_ids(other: Client) -> None:
    for method, path in [("GET", "/v1/events/mine-1"), ("DELETE", "/v1/users/sup1"),
                         ("GET", "/v1/users/sup1/settings"), ("DELETE", "/v1/templates/tpl"),
                         ("DELETE", "/v1/departments/support")]:
        theirs = other.request(method, path)
        unknown = other.request(method, path.replace("sup1", "nobody").replace(
            "mine-1", "nothing").replace("tpl", "none").replace("support", "none"))
        assert theirs.status_code == unknown.status_code == 404, (method, path)
        assert theirs.json()["error"]["code"] == "not_found"


def test_directory_import_is_all_or_nothing(tenant, pg):
    tenant_id, client = tenant
    good = "\n".join([
        '{"type": "user", "data": {"id": "imp1", "roles": ["admin"]}}',
        '{"type": "team", "data": {"id": "night", "members": ["imp1"]}}',
    ])
    response = client.post("/v1/directory:import", content=good + "\n" +
                           '{"type": "user", "data": {"id": ""}}',
                           headers={"Content-Type": "application/x-ndjson"})
    assert response.status_code == 422
    assert response.json()["error"]["problems"][0]["path"].startswith("line 3")
    with pg.session() as s:
        assert s.get(m.User, (tenant_id, "imp1")) is None
    response = client.post("/v1/directory:import", content=good)
    assert response.status_code == 200 and response.json()["imported"] == {"user": 1, "team": 1}


def test_settings_round_trip_and_bad_rows_are_refused(tenant):
    _, client = tenant
    body = {"push": False, "email": True, "customer_notifications": True,
            "advanced": {"all": {"channels": ["email", "browser"], "origin": ["me", "others"],
                                 "strategy": "first_success"}},
            "quiet_hours": [{"days": ["mon", "fri"], "from": "22:00", "to": "07:00:30"}],
            "email_digest": {"cadence": "hourly", "at": None}}
    assert client.put("/v1/users/sup1/settings", json=body).status_code == 200
    assert client.get("/v1/users/sup1/settings").json() == body
    bad = {"advanced": {"ticket.nope": {"channels": ["fax"]}}}
    response = client.put("/v1/users/sup1/settings", json=bad)
    assert response.status_code == 422
    assert client.get("/v1/users/sup1/settings").json() == body


def test_tenants_create_prints_the_key_once_and_stores_only_its_hash(deployment, pg):
    result = deployment.cli("tenants", "create", "Printed Corp", "--id",
                            f"p-{uuid.uuid4().hex[:6]}")
    assert result.returncode == 0, result.stderr
    key = next(line.split()[2] for line in result.stdout.splitlines()
               if line.startswith("API key"))
    with pg.session() as s:
        stored = [t.api_key_hash for t in s.scalars(select(m.Tenant))]
    assert key not in stored and len(key) > 30
    with Client(deployment.url, key) as client:
        assert client.get("/v1/events/none").status_code == 404
