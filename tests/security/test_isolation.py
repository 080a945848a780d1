"""Tenant isolation: every endpoint of the OpenAPI spec, walked with another
tenant's credentials and this tenant's ids, answers 401/404 and leaks nothing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from router.core.security import mint_user_token
from router.delivery import access
from tests.harness import Client, Herald, wait_until

pytestmark = pytest.mark.slow
SECRET = "AlphaSecretMarker"
UPSERTS = {("PUT", "/v1/users/{user_id}"), ("PUT", "/v1/departments/{unit_id}"),
           ("PUT", "/v1/teams/{unit_id}"), ("PUT", "/v1/templates/{template_id}"),
           ("PUT", "/v1/subjects/{kind}/{subject_id}"),
           ("PUT", "/v1/subscriptions/{subscription_id}"),
           ("PUT", "/v1/users/{user_id}/settings")}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg):
    herald = Herald(tmp_path_factory.mktemp("iso"), smtp={"port": 1})
    herald.start_api()
    herald.start_worker()
    yield herald
    herald.stop()


@pytest.fixture(scope="module")
def world(deployment, pg):
    """Tenant A with data everywhere; tenant B with its own key and user."""
    from router.directory import tenants

    made = {}
    with pg.session() as s:
        for name in ("alpha", "beta"):
            made[name] = tenants.create(s, name, tenant_id=f"iso-{name}-{uuid.uuid4().hex[:6]}")
    a, b = made["alpha"], made["beta"]
    with Client(deployment.url, a.api_key) as client:
        _seed(client)
        client.post("/v1/events", json=_event())
        # alice's feed item is what the tests need; the code user's mail goes to a closed
        # port and is retried for hours behind the breaker, so the event never "finishes"
        item = wait_until(lambda: _first_item(deployment, a), 30, 0.2,
                          what="alice's feed item of iso-1")
    with Client(deployment.url, b.api_key) as client:
        client.put("/v1/users/bob", json={"id": "bob", "name": "Bob"})
    with pg.session() as s:
        code_token, _ = access.issue(s, a.tenant_id, "QR-1", ("ticket", "T-1"), "cu1",
                                     datetime.now(UTC), 7)
    return {"a": a, "b": b, "item_id": item["id"], "code_token": code_token,
            "b_user": _token(b, "bob"), "a_user": _token(a, "alice")}


def _first_item(deployment: Herald, created) -> dict | None:
    items = httpx.get(f"{deployment.url}/v1/me/notifications", headers={
        "Authorization": f"Bearer {_token(created, 'alice')}"}).json()["items"]
    return items[0] if items else None


def _token(created, user: str) -> str:
    return mint_user_token(created.signing_secret, created.tenant_id, user, timedelta(hours=1))


def _seed(client: Client) -> None:
    client.put("/v1/users/alice", json={"id": "alice", "name": SECRET, "roles": ["admin"]})
    client.put("/v1/departments/support", json={"id": "support", "name": SECRET,
                                                 "members": ["alice"]})
    client.put("/v1/teams/night", json={"id": "night", "members": ["alice"]})
    client.put("/v1/templates/tpl", json={"id": "tpl", "name": SECRET, "groups": {
        "notification_receivers": [{"id": "g", "members": [{"kind": "user", "id": "alice"}]}]}})
    client.put("/v1/subjects/ticket/T-1", json={"kind": "ticket", "id": "T-1", "number": SECRET,
                                                "template_id": "tpl", "code_id": "QR-1"})
    client.put("/v1/subscriptions/cu1", json={"id": "cu1", "subject_kind": "ticket",
                                              "subject_id": "T-1", "code_id": "QR-1",
                                              "email": "cu@example.com"})


def _event() -> dict:
    return {"id": "iso-1", "type": "ticket.created", "data": {"title": SECRET},
            "subject": {"kind": "ticket", "id": "T-1", "number": "#1", "template_id": "tpl"}}


PARAMS = {"user_id": "alice", "unit_id": "support", "template_id": "tpl", "kind": "ticket",
          "subject_id": "T-1", "subscription_id": "cu1", "event_id": "iso-1", "code_id": "QR-1",
          "token": "hu_unknown"}


def _bodies(world) -> dict[tuple[str, str], object]:
    return {
        ("PUT", "/v1/users/{user_id}"): {"id": "alice", "name": "Mallory"},
        ("PUT", "/v1/departments/{unit_id}"): {"id": "support"},
        ("PUT", "/v1/teams/{unit_id}"): {"id": "support"},
        ("PUT", "/v1/templates/{template_id}"): {"id": "tpl"},
        ("PUT", "/v1/subjects/{kind}/{subject_id}"): {"kind": "ticket", "id": "T-1"},
        ("PUT", "/v1/subscriptions/{subscription_id}"): {
            "id": "cu1", "subject_kind": "ticket", "subject_id": "T-1", "email": "m@x.io"},
        ("PUT", "/v1/users/{user_id}/settings"): {"email": False},
        ("POST", "/v1/access-tokens:verify"): {"token": world["code_token"]},
        ("DELETE", "/v1/me/push-subscriptions"): {"endpoint": "https://push.example/x"},
        ("DELETE", "/v1/me/devices"): {"token": "fcm-token-of-someone"},
        ("POST", "/v1/me/notifications/{item_id}/snooze"): {
            "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
    }


def _operations(deployment) -> list[tuple[str, str]]:
    spec = httpx.get(f"{deployment.url}/openapi.json").json()
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops]


def _url(path: str, world) -> str:
    params = dict(PARAMS, item_id=str(world["item_id"]))
    return re.sub(r"\{(\w+)\}", lambda mt: params[mt.group(1)], path)


def test_the_walk_covers_every_operation(deployment):
    ops = _operations(deployment)
    assert len(ops) >= 30
    assert all(re.sub(r"\{\w+\}", "", p).startswith("/v1/") for _, p in ops)


def test_every_endpoint_refuses_no_credential(deployment, world):
    for method, path in _operations(deployment):
        if path in ("/v1/push/vapid-public-key",):
            continue  # public by design: the browser needs it before anyone logs in
        response = httpx.request(method, deployment.url + _url(path, world),
                                 json=_bodies(world).get((method, path), {}))
        expected = {404} if "{token}" in path else {401}
        assert response.status_code in expected, (method, path, response.status_code)


def test_another_tenants_credentials_see_404_or_401_and_no_data(deployment, world):
    bodies = _bodies(world)
    service = {"Authorization": f"Bearer {world['b'].api_key}"}
    user = {"Authorization": f"Bearer {world['b_user']}"}
    ops = _operations(deployment)  # upserts last: they create B's own rows with A's ids
    for method, path in sorted(ops, key=lambda op: op in UPSERTS):
        headers = user if path.startswith("/v1/me") else service
        response = httpx.request(method, deployment.url + _url(path, world), headers=headers,
                                 json=bodies.get((method, path), {}))
        assert SECRET not in response.text, (method, path)
        assert response.status_code < 500, (method, path, response.text)
        if (method, path) in UPSERTS:
            continue  # writes land in B's own namespace; A is checked below
        if path == "/v1/access-tokens:verify":
            assert response.json() == {"valid": False, "reason": "unknown"}
        elif "{" in path:
            assert response.status_code in (401, 404), (method, path, response.status_code)
    _alpha_unchanged(deployment, world)


def _alpha_unchanged(deployment, world) -> None:
    with Client(deployment.url, world["a"].api_key) as client:
        assert client.get("/v1/users/alice/settings").json()["email"] is True
        assert client.get("/v1/events/iso-1").json()["status"] == "routed"
        assert client.post("/v1/access-tokens:verify",
                           json={"token": world["code_token"]}).json()["valid"] is True
    feed = httpx.get(f"{deployment.url}/v1/me/notifications",
                     headers={"Authorization": f"Bearer {world['a_user']}"}).json()
    assert [i["id"] for i in feed["items"]] == [world["item_id"]]
    assert feed["items"][0]["unread"] is True


def test_a_user_cannot_touch_another_users_feed_or_settings(deployment, world, pg):
    from router.directory import directory as d

    with pg.session() as s:
        d.put_user(s, world["a"].tenant_id, d.UserIn(id="carol", name="Carol"))
    carol = {"Authorization": f"Bearer {_token(world['a'], 'carol')}"}
    base = deployment.url
    assert httpx.post(f"{base}/v1/me/notifications/{world['item_id']}/read",
                      headers=carol).status_code == 404
    assert httpx.get(f"{base}/v1/me/notifications", headers=carol).json()["items"] == []
    assert httpx.put(f"{base}/v1/me/settings", headers=carol, json={"email": False}
                     ).status_code == 200
    with Client(base, world["a"].api_key) as client:
        assert client.get("/v1/users/alice/settings").json()["email"] is True


def test_tampered_expired_and_foreign_tokens_are_refused(deployment, world):
    base = deployment.url
    good = world["a_user"]
    head, payload, sig = good.split(".")
    tampered = f"{head}.{payload}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
    expired = mint_user_token(world["a"].signing_secret, world["a"].tenant_id, "alice",
                              timedelta(seconds=-5))
    forged = mint_user_token(world["b"].signing_secret, world["a"].tenant_id, "alice",
                             timedelta(hours=1))
    for token, code in [(tampered, "token.invalid"), (expired, "token.expired"),
                        (forged, "token.invalid"), ("hat_tampered", "token.unknown")]:
        response = httpx.get(f"{base}/v1/me/notifications/unread-count",
                             headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401 and response.json()["error"]["code"] == code
