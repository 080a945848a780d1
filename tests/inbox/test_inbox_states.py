"""Seen, archive and snooze (issue #16) on real `herald serve` + `herald worker` processes
over PostgreSQL and Redis: round trips, counts, views and their cursor pages, the live
frames every open session gets, durable wake-ups, and who may touch which item."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from router.delivery import access
from router.directory import tenants
from router.store.db import Database
from tests.conftest import own_schema
from tests.harness import REDIS_BASE, Client, Herald, wait_until
from tests.inbox import (
    Inbox,
    deployed,
    event,
    frame_checker,
    people_tenant,
    publish,
    receivers,
    seed_people,
    start,
    user_token,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg) -> Iterator[Herald]:
    with deployed(tmp_path_factory.mktemp("states")) as herald:
        yield herald


@pytest.fixture
def tenant(deployment, new_tenant_key) -> Iterator[tuple[str, str, Client]]:
    """(tenant id, signing secret, service client) of a fresh tenant with people in it."""
    with people_tenant(deployment.url, new_tenant_key) as made:
        yield made


@pytest.fixture
def inbox(deployment, tenant) -> Iterator[Any]:
    """Open a receiver's inbox: inbox("alice")."""
    with receivers(deployment.url, tenant) as open_inbox:
        yield open_inbox


def _counts(box: Inbox) -> dict[str, int]:
    response = box.get("/v1/me/notifications/unread-count")
    assert response.status_code == 200, response.text
    return response.json()


def _ids(items: list[dict[str, Any]]) -> list[int]:
    return [i["id"] for i in items]


def _by_subject(box: Inbox, **params: Any) -> dict[str, dict[str, Any]]:
    return {i["subject"]["id"]: i for i in box.items(**params)}


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _snooze(box: Inbox, item_id: int, seconds: float) -> httpx.Response:
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    return box.post(f"/v1/me/notifications/{item_id}/snooze", json={"until": until.isoformat()})


def _ws(url: str, token: str) -> ClientConnection:
    query = urlencode({"token": token})
    return connect(url.replace("http://", "ws://") + f"/v1/me/stream?{query}")


def _frame(ws: ClientConnection, kind: str, timeout: float = 5) -> dict[str, Any]:
    """The next frame of this type (others skipped), within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if got["type"] == kind:
            return got


# ---------------------------------------------------------------------- seen and read


def test_a_new_item_is_unread_and_unseen_and_seen_lowers_only_the_unseen_count(tenant, inbox):
    _, _, client = tenant
    publish(client, event("S-1"), event("S-2"))
    alice = inbox("alice")
    items = _by_subject(alice)
    assert [(i["unread"], i["seen"]) for i in items.values()] == [(True, False)] * 2
    assert _counts(alice) == {"unread": 2, "unseen": 2}
    first, second = items["S-1"]["id"], items["S-2"]["id"]
    marked = _ok(alice.post("/v1/me/notifications/seen", json={"ids": [first]}))
    assert marked == {"unread": 2, "unseen": 1, "seen": [first]}
    assert _ok(alice.post("/v1/me/notifications/seen", json={"ids": [first]}))["seen"] == []
    after = _by_subject(alice)
    assert (after["S-1"]["seen"], after["S-1"]["unread"]) == (True, True)
    assert after["S-2"]["seen"] is False
    assert alice.read(second).status_code == 200  # a read item is no longer counted unseen
    assert _counts(alice) == {"unread": 1, "unseen": 0}


def test_an_event_stacked_on_a_seen_item_makes_it_unseen_again(tenant, inbox):
    _, _, client = tenant
    publish(client, event("ST-1", "ticket.message_added", message="one"))
    alice = inbox("alice")
    [item] = alice.items()
    _ok(alice.post("/v1/me/notifications/seen", json={"ids": [item["id"]]}))
    assert _counts(alice) == {"unread": 1, "unseen": 0}
    publish(client, event("ST-1", "ticket.message_added", message="two"))
    [stacked] = alice.items()
    assert (stacked["id"], stacked["count"], stacked["seen"]) == (item["id"], 2, False)
    assert _counts(alice) == {"unread": 1, "unseen": 1}


# ---------------------------------------------------------------------- archive


def test_archiving_reads_an_item_and_moves_it_from_the_inbox_views_to_the_archive(tenant, inbox):
    _, _, client = tenant
    publish(client, event("A-1"), event("A-2"))
    alice = inbox("alice")
    ids = _by_subject(alice)
    archived = _ok(alice.post(f"/v1/me/notifications/{ids['A-1']['id']}/archive"))
    assert (archived["archived"], archived["unread"]) == (True, False)
    assert list(_by_subject(alice)) == ["A-2"]
    assert list(_by_subject(alice, view="unread")) == ["A-2"]
    assert list(_by_subject(alice, view="archived")) == ["A-1"]
    assert _counts(alice) == {"unread": 1, "unseen": 1}
    again = _ok(alice.post(f"/v1/me/notifications/{ids['A-1']['id']}/archive"))
    assert again == archived  # archiving twice changes nothing
    back = _ok(alice.post(f"/v1/me/notifications/{ids['A-1']['id']}/unarchive"))
    assert (back["archived"], back["unread"]) == (False, False)
    assert back["seq"] > archived["seq"]  # replayed to a session that reconnects
    assert sorted(_by_subject(alice)) == ["A-1", "A-2"]
    assert alice.items(view="archived") == []


def test_archive_all_read_takes_the_read_items_and_leaves_the_unread_ones(tenant, inbox):
    _, _, client = tenant
    publish(client, event("AR-1"), event("AR-2"), event("AR-3"))
    alice = inbox("alice")
    ids = _by_subject(alice)
    for subject in ("AR-1", "AR-3"):
        assert alice.read(ids[subject]["id"]).status_code == 200
    response = _ok(alice.post("/v1/me/notifications/archive-read"))
    assert response == {"unread": 1, "unseen": 1, "archived": 2}
    assert list(_by_subject(alice)) == ["AR-2"]
    assert sorted(_by_subject(alice, view="archived")) == ["AR-1", "AR-3"]
    assert _ok(alice.post("/v1/me/notifications/archive-read"))["archived"] == 0


def test_a_new_event_about_an_archived_item_starts_a_new_item(tenant, inbox):
    _, _, client = tenant
    publish(client, event("AN-1", "ticket.message_added", message="one"))
    alice = inbox("alice")
    [old] = alice.items()
    _ok(alice.post(f"/v1/me/notifications/{old['id']}/archive"))
    publish(client, event("AN-1", "ticket.message_added", message="two"))
    [fresh] = alice.items()
    assert fresh["id"] != old["id"] and (fresh["count"], fresh["unread"]) == (1, True)
    assert _ids(alice.items(view="archived")) == [old["id"]]


def test_each_view_pages_through_its_own_items_once(tenant, inbox):
    _, _, client = tenant
    publish(client, *[event(f"V-{i}") for i in range(7)])
    alice = inbox("alice")
    everything = alice.items()
    for item in everything[1::2]:  # every other one, newest first
        _ok(alice.post(f"/v1/me/notifications/{item['id']}/archive"))
    for view, expected in (("archived", _ids(everything[1::2])), ("all", _ids(everything[::2]))):
        seen, cursor, pages = [], None, 0
        while pages == 0 or cursor:
            params = {"limit": 2, "view": view, **({"cursor": cursor} if cursor else {})}
            body = _ok(alice.get("/v1/me/notifications", params=params))
            seen += _ids(body["items"])
            cursor, pages = body["next_cursor"], pages + 1
        assert seen == expected, view
        assert pages == (len(expected) + 1) // 2


# ---------------------------------------------------------------------- snooze


def test_a_snoozed_item_leaves_the_views_and_wakes_on_top_unread_and_unseen_announced_live(
        deployment, tenant, inbox):
    tenant_id, secret, client = tenant
    publish(client, event("Z-1"))
    publish(client, event("Z-2"))
    alice = inbox("alice")
    ids = _by_subject(alice)
    snoozed_id, other = ids["Z-1"]["id"], ids["Z-2"]
    assert alice.read(snoozed_id).status_code == 200
    _ok(alice.post("/v1/me/notifications/seen", json={"ids": [other["id"]]}))
    with _ws(deployment.url, user_token(secret, tenant_id, "alice")) as ws, \
            _ws(deployment.url, user_token(secret, tenant_id, "alice")) as phone:
        assert _frame(ws, "hello") == {"type": "hello", "unread": 1, "unseen": 0}
        _frame(phone, "hello")
        response = _snooze(alice, snoozed_id, 2.5)
        snoozed = _ok(response)
        until = datetime.fromisoformat(snoozed["snoozed_until"])
        assert abs((until - datetime.now(UTC)).total_seconds() - 2.5) < 1
        told = _frame(ws, "unread")
        assert told["snoozed"] == [{"id": snoozed_id, "until": until.isoformat()}]
        assert _frame(phone, "unread") == told
        assert list(_by_subject(alice)) == ["Z-2"]
        assert list(_by_subject(alice, view="snoozed")) == ["Z-1"]
        woke = _frame(ws, "item", timeout=8)
        waited = (datetime.now(UTC) - until).total_seconds()
        print(f"\nsnoozed until T -> woke frame at T + {waited * 1000:.0f} ms")
        assert waited < 1.5  # the delayed message, not the sweeper's late pass
        assert _frame(phone, "item") == woke
    assert woke["woke"] is True and woke["item"]["id"] == snoozed_id
    assert (woke["item"]["unread"], woke["item"]["seen"]) == (True, False)
    assert woke["item"]["snoozed_until"] is None and woke["item"]["seq"] > other["seq"]
    assert (woke["unread"], woke["unseen"]) == (2, 1)
    assert _ids(alice.items()) == [snoozed_id, other["id"]]  # back on top
    assert _counts(alice) == {"unread": 2, "unseen": 1}


def test_a_new_event_about_a_snoozed_unread_item_wakes_it(tenant, inbox):
    _, _, client = tenant
    publish(client, event("ZN-1", "ticket.message_added", message="one"))
    alice = inbox("alice")
    [item] = alice.items()
    _ok(_snooze(alice, item["id"], 3600))
    assert alice.items() == [] and _counts(alice) == {"unread": 0, "unseen": 0}
    publish(client, event("ZN-1", "ticket.message_added", message="two"))
    [back] = alice.items()
    assert (back["id"], back["count"], back["snoozed_until"]) == (item["id"], 2, None)


def test_a_read_item_whose_stack_got_a_new_unread_item_wakes_read(deployment, tenant, inbox):
    """One unread item per stack: the fresh one carries the news."""
    _, _, client = tenant
    publish(client, event("ZS-1", "ticket.message_added", message="one"))
    alice = inbox("alice")
    [old] = alice.items()
    assert alice.read(old["id"]).status_code == 200
    _ok(_snooze(alice, old["id"], 1.5))
    publish(client, event("ZS-1", "ticket.message_added", message="two"))
    wait_until(lambda: len(alice.items()) == 2, 10, 0.2, what="the snoozed item back")
    woke, fresh = sorted(alice.items(), key=lambda i: i["id"])
    assert woke["id"] == old["id"] and woke["unread"] is False
    assert fresh["unread"] is True and _counts(alice)["unread"] == 1


def test_a_wake_up_survives_a_killed_worker_and_a_flushed_redis(tmp_path):
    """The row is the timer: with the worker killed and its delayed message gone with the
    Redis data, a new worker's sweeper pass wakes the item (lost_after_s late at most). In a
    schema of its own: another deployment's sweeper would wake it too."""
    with own_schema() as url:
        herald = Herald(tmp_path, smtp={"port": 1}, database_url=url)
        try:
            start(herald)
            db = Database(url)
            with db.session() as s:
                created = tenants.create(s, "Acme", tenant_id="t-wake")
            db.dispose()
            _wake_after_worker_and_redis_loss(herald, created)
        finally:
            herald.stop()


def _wake_after_worker_and_redis_loss(herald: Herald, created: Any) -> None:
    token = user_token(created.signing_secret, created.tenant_id, "alice")
    with Client(herald.url, created.api_key) as client, Inbox(herald.url, token) as alice:
        seed_people(client)
        publish(client, event("ZK-1"))
        [item] = alice.items()
        herald.kill("worker")
        until = datetime.fromisoformat(_ok(_snooze(alice, item["id"], 1))["snoozed_until"])
        with redis.Redis.from_url(f"{REDIS_BASE}/{herald.redis_db}") as broker:
            assert any(b"DQ" in k for k in broker.keys())  # the delayed message, then
            broker.flushdb()  # ... lost, as with a Redis restart without persistence
        time.sleep(2)
        assert alice.items() == []  # due, but no worker runs to wake it
        herald.start_worker()
        wait_until(lambda: _ids(alice.items()) == [item["id"]], 20, 0.2,
                   what="the item woken by the new worker's sweeper")
        late = (datetime.now(UTC) - until).total_seconds()
        print(f"\nwoken by the sweeper {late:.1f} s after its time (worker down 2 s of it)")
        assert alice.items()[0]["unread"] is True
    assert "snooze.overdue_woken" in herald.log("worker")


# ---------------------------------------------------------------------- live frames


def test_every_inbox_frame_reaches_each_open_session_and_matches_the_asyncapi_document(
        deployment, tenant, inbox):
    tenant_id, secret, client = tenant
    check = frame_checker(httpx.get(f"{deployment.url}/asyncapi.json", timeout=10).json())
    publish(client, event("F-1"), event("F-2"))
    alice = inbox("alice")
    first, second = _ids(alice.items())
    token = user_token(secret, tenant_id, "alice")
    with _ws(deployment.url, token) as tab, _ws(deployment.url, token) as phone:
        sent = [_frame(tab, "hello")]
        _frame(phone, "hello")
        steps = [
            lambda: alice.post("/v1/me/notifications/seen", json={"ids": [first, second]}),
            lambda: alice.post(f"/v1/me/notifications/{first}/archive"),
            lambda: alice.post(f"/v1/me/notifications/{first}/unarchive"),
            lambda: alice.read(second),
            lambda: alice.post("/v1/me/notifications/archive-read"),
            lambda: _snooze(alice, second, 1),
        ]
        kinds = ["unread", "unread", "item", "unread", "unread", "unread"]
        for step, kind in zip(steps, kinds, strict=True):
            assert step().status_code == 200
            sent.append(_frame(tab, kind))
            assert _frame(phone, kind) == sent[-1]
        sent.append(_frame(tab, "item", timeout=8))
    hello, seen, archived, restored, read, archived_read, snoozed, woke = sent
    assert hello == {"type": "hello", "unread": 2}
    assert seen == {"type": "unread", "unread": 2, "unseen": 0, "seen": sorted([first, second])}
    assert archived == {"type": "unread", "unread": 1, "unseen": 0, "archived": [first]}
    assert (restored["item"]["id"], restored["item"]["archived"]) == (first, False)
    assert read["read"] == [second] and read["unread"] == 0
    assert archived_read["archived_read_up_to_seq"] >= restored["item"]["seq"]
    assert snoozed["snoozed"][0]["id"] == second
    assert (woke["item"]["id"], woke["woke"], woke["unread"]) == (second, True, 1)
    assert [check(f) for f in sent] == [None] * len(sent)


# ---------------------------------------------------------------------- who may touch what


def test_another_users_or_tenants_item_is_not_found_and_untouched(
        deployment, tenant, inbox, new_tenant_key):
    _, _, client = tenant
    publish(client, event("X-1", creator="bob"))
    bob = inbox("bob")
    [bobs] = bob.items()
    other_id, other_key, other_secret = new_tenant_key("Other")
    with Client(deployment.url, other_key) as other:
        seed_people(other)  # an "alice" there too
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with Inbox(deployment.url, user_token(other_secret, other_id, "alice")) as stranger:
        for box in (inbox("alice"), stranger):
            for action, body in (("archive", None), ("unarchive", None),
                                 ("snooze", {"until": until}), ("read", None)):
                response = box.post(f"/v1/me/notifications/{bobs['id']}/{action}", json=body)
                assert response.status_code == 404, (action, response.text)
                assert response.json()["error"]["code"] == "not_found"
            marked = _ok(box.post("/v1/me/notifications/seen", json={"ids": [bobs["id"]]}))
            assert marked["seen"] == []
    assert bob.items() == [bobs]  # not seen, not archived, not snoozed, not read
    assert _counts(bob) == {"unread": 1, "unseen": 1}


def test_a_code_user_sees_archives_and_snoozes_its_own_items_only(deployment, tenant, pg):
    tenant_id, secret, client = tenant
    client.put("/v1/subjects/ticket/CU-1", json={"kind": "ticket", "id": "CU-1",
                                                 "code_id": "C-CU"})
    client.put("/v1/subscriptions/cu-1", json={
        "id": "cu-1", "subject_kind": "ticket", "subject_id": "CU-1", "code_id": "C-CU",
        "email": "anon@example.com", "created_by": "employee"})
    publish(client, event("CU-1", "ticket.message_added", message="one"),
            event("CU-2", creator="alice"))
    with pg.session() as s:
        token, _ = access.issue(s, tenant_id, "C-CU", ("ticket", "CU-1"), "cu-1",
                                datetime.now(UTC), 14)
    with Inbox(deployment.url, token) as code_user, \
            Inbox(deployment.url, user_token(secret, tenant_id, "alice")) as alice:
        [own] = code_user.items()
        alices = _by_subject(alice)["CU-2"]["id"]
        assert _ok(code_user.post("/v1/me/notifications/seen",
                                  json={"ids": [own["id"], alices]}))["seen"] == [own["id"]]
        assert _ok(code_user.post(f"/v1/me/notifications/{own['id']}/archive"))["archived"]
        assert _ids(code_user.items(view="archived")) == [own["id"]]
        assert _ok(_snooze(code_user, own["id"], 3600))["snoozed_until"]
        assert code_user.items() == [] and _counts(code_user) == {"unread": 0, "unseen": 0}
        for action in ("archive", "unarchive"):
            response = code_user.post(f"/v1/me/notifications/{alices}/{action}")
            assert response.status_code == 404
        assert _snooze(code_user, alices, 60).status_code == 404
        assert _by_subject(alice)["CU-2"]["archived"] is False


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize("until, why", [
    (lambda now: now - timedelta(minutes=1), "must be in the future"),
    (lambda now: now + timedelta(days=400), "must be at most a year ahead"),
    (lambda now: now.replace(tzinfo=None) + timedelta(hours=1), "timezone"),
    (lambda now: "tomorrow", "datetime")])
def test_a_snooze_time_in_the_past_too_far_or_without_an_offset_is_422_naming_until(
        tenant, inbox, until, why):
    _, _, client = tenant
    publish(client, event("B-1"))
    alice = inbox("alice")
    [item] = alice.items()
    value = until(datetime.now(UTC))
    response = alice.post(f"/v1/me/notifications/{item['id']}/snooze",
                          json={"until": value if isinstance(value, str) else value.isoformat()})
    assert response.status_code == 422, response.text
    [problem] = response.json()["error"]["problems"]
    assert problem["path"] == "until" and why in problem["message"]
    assert alice.items()[0]["snoozed_until"] is None


def test_an_unknown_view_or_bad_seen_ids_are_422_naming_the_field(inbox):
    alice = inbox("alice")
    archived_unread = alice.get("/v1/me/notifications", params={"view": "archived",
                                                                 "unread": "true"})
    assert _ok(archived_unread) == {"items": [], "next_cursor": None}  # archived is read
    cases = [(alice.get("/v1/me/notifications", params={"view": "starred"}), "view"),
             (alice.post("/v1/me/notifications/seen", json={"ids": []}), "ids"),
             (alice.post("/v1/me/notifications/seen", json={"ids": [0]}), "ids.0"),
             (alice.post("/v1/me/notifications/seen", json={"ids": list(range(1, 102))}), "ids"),
             (alice.post("/v1/me/notifications/1/snooze", json={}), "until")]
    for response, path in cases:
        assert response.status_code == 422, (path, response.text)
        assert [p["path"] for p in response.json()["error"]["problems"]] == [path]


def test_the_openapi_document_describes_the_inbox_operations(deployment):
    spec = httpx.get(f"{deployment.url}/openapi.json", timeout=10).json()
    paths = spec["paths"]
    for path in ("seen", "archive-read", "{item_id}/archive", "{item_id}/unarchive",
                 "{item_id}/snooze"):
        assert "post" in paths[f"/v1/me/notifications/{path}"], path
    views = next(p for p in paths["/v1/me/notifications"]["get"]["parameters"]
                 if p["name"] == "view")
    view_schema = views["schema"]
    if "$ref" in view_schema:
        view_schema = spec["components"]["schemas"][view_schema["$ref"].rsplit("/", 1)[1]]
    assert view_schema["enum"] == ["all", "unread", "archived", "snoozed"]
    snooze = paths["/v1/me/notifications/{item_id}/snooze"]["post"]
    assert snooze["requestBody"]["content"]["application/json"]["examples"]
    answer = snooze["responses"]["200"]["content"]["application/json"]
    assert answer["example"]["subject"]["number"] == "#1042"
    item = spec["components"]["schemas"][answer["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"seen", "archived", "snoozed_until"} <= set(item["properties"])
    counts = paths["/v1/me/notifications/unread-count"]["get"]["responses"]["200"]
    assert counts["content"]["application/json"]["schema"]["$ref"].endswith("/Counts")
