"""Input PostgreSQL cannot store (a NUL character, a lone surrogate) or an id past
the bigint range is a 422 naming the field, never a 500, and nothing is stored:
a real `herald serve` on the machine's PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from router.core.security import mint_user_token
from router.store import models as m
from tests.harness import Client, Herald

pytestmark = pytest.mark.slow
NUL = "a\u0000b"
SURROGATE = "a\ud800b"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg):
    herald = Herald(tmp_path_factory.mktemp("unstorable"), smtp={"port": 1})
    herald.start_api()
    yield herald
    herald.stop()


@pytest.fixture
def tenant(deployment, pg):
    import uuid

    from router.directory import tenants

    with pg.session() as s:
        created = tenants.create(s, "Odd Input", tenant_id=f"t-{uuid.uuid4().hex[:10]}")
    with Client(deployment.url, created.api_key) as client:
        assert client.put("/v1/users/u1", json={"id": "u1"}).status_code == 204
        user = mint_user_token(created.signing_secret, created.tenant_id, "u1", timedelta(hours=1))
        yield created.tenant_id, client, user


def event(**changes) -> dict:
    body = {"id": "e-1", "type": "ticket.created", "actor": {"id": "a1", "name": "Ann"},
            "subject": {"kind": "ticket", "id": "T-1", "number": "#1"}, "data": {"title": "x"}}
    for key, value in changes.items():
        target = body
        *parents, last = key.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value
    return body


def send(client: Client, method: str, url: str, body: object, token: str | None = None):
    headers = {"Content-Type": "application/json"}  # json.dumps keeps "\ud800" as an escape
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.request(method, url, content=json.dumps(body), headers=headers)


def problems(response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(p.get("path", ""), p["message"]) for p in response.json()["error"]["problems"]]


def stored(pg, tenant_id: str, model) -> int:
    with pg.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(
            model.tenant_id == tenant_id)) or 0


@pytest.mark.parametrize("changes, path, words", [
    ({"data.note": NUL}, "data", "data.note: must not contain a NUL"),
    ({"data.nested": {"list": ["ok", SURROGATE]}}, "data",
     "data.nested.list.1: must not contain a lone surrogate"),
    ({"data": {NUL: 1}}, "data", "(a key): must not contain a NUL"),
    ({"id": NUL}, "id", "NUL"),
    ({"id": SURROGATE}, "id", "unicode"),
    ({"actor.name": NUL}, "actor.name", "NUL"),
    ({"actor.name": SURROGATE}, "actor.name", "unicode"),
    ({"subject.participants": ["ok", NUL]}, "subject.participants", "participants.1: must not"),
])
def test_an_event_with_unstorable_text_is_a_422_naming_the_field_and_nothing_is_stored(
        tenant, pg, changes, path, words):
    tenant_id, client, _ = tenant
    found = problems(send(client, "POST", "/v1/events", event(**changes)))
    assert [p for p, _ in found] == [path]
    assert words in found[0][1]
    batch = problems(send(client, "POST", "/v1/events:batch", [event(id="ok"), event(**changes)]))
    assert [p for p, _ in batch] == [f"1.{path}"]
    assert stored(pg, tenant_id, m.EventRow) == 0


@pytest.mark.parametrize("value", [NUL, SURROGATE])
def test_a_user_name_that_cannot_be_stored_is_a_422_and_the_user_is_unchanged(tenant, pg, value):
    tenant_id, client, _ = tenant
    found = problems(send(client, "PUT", "/v1/users/u2", {"id": "u2", "name": value}))
    assert [p for p, _ in found] == ["name"]
    assert stored(pg, tenant_id, m.User) == 1


@pytest.mark.parametrize("value", ["x" * 12 + NUL, "x" * 12 + SURROGATE])
def test_a_device_token_that_cannot_be_stored_is_a_422(tenant, pg, value):
    tenant_id, client, user = tenant
    found = problems(send(client, "POST", "/v1/me/devices", {"token": value}, token=user))
    assert [p for p, _ in found] == ["token"]
    assert stored(pg, tenant_id, m.PushTarget) == 0


def test_an_item_id_past_the_bigint_range_is_a_422_naming_it(tenant):
    _, client, user = tenant
    response = client.post(f"/v1/me/notifications/{2**63}/read",
                           headers={"Authorization": f"Bearer {user}"})
    assert [p for p, _ in problems(response)] == ["item_id"]
    largest = client.post(f"/v1/me/notifications/{2**63 - 1}/read",
                          headers={"Authorization": f"Bearer {user}"})
    assert largest.status_code == 404


def test_a_nul_in_a_path_or_query_parameter_is_a_422_naming_it(tenant):
    _, client, user = tenant
    assert [p for p, _ in problems(client.get("/v1/events/a%00b"))] == ["event_id"]
    assert [p for p, _ in problems(client.get("/v1/me/notifications?cursor=a%00b",
                                              headers={"Authorization": f"Bearer {user}"}))
            ] == ["cursor"]
