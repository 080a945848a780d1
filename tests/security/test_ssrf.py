"""Push endpoints cannot point Herald at internal addresses (server-side request forgery):
refused at registration with a 422 naming the field, refused again when sending (a
permanent failure, no connection), and a worker refuses to start with an FCM URL on
one. Runs `herald serve` + `herald worker` on PostgreSQL and Redis; the only server
ever contacted is the local push service on 127.0.0.1, and only when allow-listed."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from router.core.security import mint_user_token
from router.store import models as m
from tests.harness import Client, Herald
from tests.servers.fcm import FcmService

pytestmark = pytest.mark.slow

HOW_TO_ALLOW = "add it to outbound.allow if this is your own push service"
HTTPS_ONLY = "must be an https URL (plain http only for hosts in outbound.allow)"


def deploy(tmp: Path, vapid: tuple[str, str], allow: list[str]) -> Herald:
    herald = Herald(tmp, smtp={"port": 1}, outbound={"allow": allow},
                    push={"vapid_private_key": vapid[0], "vapid_public_key": vapid[1]})
    herald.start_api()
    herald.start_worker()
    return herald


@pytest.fixture(scope="module")
def closed(tmp_path_factory, pg, vapid) -> Iterator[Herald]:
    """A deployment with an empty allow-list: only public push services."""
    herald = deploy(tmp_path_factory.mktemp("ssrf"), vapid, [])
    yield herald
    herald.stop()


class Tenant:
    """A fresh tenant with one employee, ann, and the calls the tests make."""

    def __init__(self, url: str, new_tenant_key: Any) -> None:
        self.id, key, self.secret = new_tenant_key()
        self.url = url
        self.client = Client(url, key)
        assert self.client.put("/v1/users/ann", json={"id": "ann"}).status_code == 204

    def register(self, subscription: dict[str, Any]) -> httpx.Response:
        token = mint_user_token(self.secret, self.id, "ann", timedelta(hours=1))
        return httpx.post(f"{self.url}/v1/me/push-subscriptions", json=subscription,
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def publish_ticket(self) -> dict[str, Any]:
        event_id = uuid.uuid4().hex
        response = self.client.post("/v1/events", json={
            "id": event_id, "type": "ticket.created",
            "subject": {"kind": "ticket", "id": "T-1", "number": "#1", "creator_id": "ann"}})
        assert response.status_code == 202, response.text
        return self.client.wait_terminal(event_id)


@pytest.fixture
def acme(closed, new_tenant_key) -> Iterator[Tenant]:
    tenant = Tenant(closed.url, new_tenant_key)
    yield tenant
    tenant.client.close()


def stored_targets(pg, tenant: str) -> list[str]:
    with pg.session() as s:
        return list(s.scalars(select(m.PushTarget.endpoint).where(
            m.PushTarget.tenant_id == tenant)))


def problems(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(p["path"], p["message"]) for p in response.json()["error"]["problems"]]


def push_steps(activity: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in activity["deliveries"] if d["channel"] == "push"]


# ---------------------------------------------------------------------- registration


@pytest.mark.parametrize("endpoint, reason", [
    ("https://127.0.0.1:8443/push/1", f"127.0.0.1 is a loopback address; {HOW_TO_ALLOW}"),
    ("https://localhost/push/1", f"localhost resolves to a loopback address 127.0.0.1; "
                                 f"{HOW_TO_ALLOW}"),
    ("https://[::1]/push/1", f"::1 is a loopback address; {HOW_TO_ALLOW}"),
    ("https://10.0.0.1/push/1", f"10.0.0.1 is a private address; {HOW_TO_ALLOW}"),
    ("https://169.254.169.254/latest/meta-data/", f"169.254.169.254 is a link-local address; "
                                                  f"{HOW_TO_ALLOW}"),
    ("https://0.0.0.0/push/1", f"0.0.0.0 is a unspecified address; {HOW_TO_ALLOW}"),
    ("https://[::ffff:127.0.0.1]/push/1", f"::ffff:127.0.0.1 is a loopback address; "
                                          f"{HOW_TO_ALLOW}"),
    ("http://push.example.com/push/1", HTTPS_ONLY),
    ("http://127.0.0.1:6379/", HTTPS_ONLY),
])
def test_a_push_endpoint_on_a_non_public_address_is_a_422_naming_the_field_and_not_stored(
        acme, pg, web_push, endpoint, reason):
    keys = web_push.new_subscription()["keys"]
    response = acme.register({"endpoint": endpoint, "keys": keys})
    assert problems(response) == [("endpoint", reason)]
    assert stored_targets(pg, acme.id) == []


def test_the_local_push_service_is_refused_without_an_allow_entry_and_never_contacted(
        acme, pg, web_push):
    web_push.clear()
    response = acme.register(web_push.new_subscription())
    assert problems(response) == [("endpoint", HTTPS_ONLY)]
    assert stored_targets(pg, acme.id) == []
    assert acme.publish_ticket()["deliveries"]  # routed: the browser channel, no push target
    assert web_push.attempts == []


def test_a_code_user_push_sign_up_on_a_private_address_is_a_422_and_not_stored(acme, pg,
                                                                                 web_push):
    keys = web_push.new_subscription()["keys"]
    sign_up = {"id": "cu-1", "subject_kind": "ticket", "subject_id": "T-CU",
               "push_subscription": {"endpoint": "https://10.0.0.1/push/1", "keys": keys},
               "channels": ["push"]}
    response = acme.client.put("/v1/subscriptions/cu-1", json=sign_up)
    assert problems(response) == [("push_subscription.endpoint",
                                   f"10.0.0.1 is a private address; {HOW_TO_ALLOW}")]
    line = json.dumps({"type": "subscription", "data": sign_up})
    response = acme.client.post("/v1/directory:import", content=f"{line}\n",
                                headers={"Content-Type": "application/x-ndjson"})
    assert problems(response) == [("line 1: push_subscription.endpoint",
                                   f"10.0.0.1 is a private address; {HOW_TO_ALLOW}")]
    with pg.session() as s:
        assert s.get(m.Subscription, (acme.id, "cu-1")) is None


# ---------------------------------------------------------------------- send time


def test_an_allow_listed_push_service_works_until_the_allow_entry_is_removed(
        tmp_path, pg, closed, new_tenant_key, vapid, web_push):
    # both deployments share the database: the closed one's worker would pick up this
    # one's events in its lost-event pass and refuse the push by its own (empty) allow-list
    closed.kill("worker", signal.SIGTERM)
    herald = deploy(tmp_path, vapid, ["127.0.0.1"])
    acme = Tenant(herald.url, new_tenant_key)
    try:
        web_push.clear()
        assert acme.register(web_push.new_subscription()).status_code == 201
        [sent] = push_steps(acme.publish_ticket())
        assert sent["status"] == "sent", sent
        assert len(web_push.wait_for(1)) == 1
        _restart_worker_with(herald, allow=[])  # the subscription stays stored
        web_push.clear()
        [refused] = push_steps(acme.publish_ticket())
        assert (refused["status"], refused["attempts"]) == ("failed", 1)
        assert f"not sent: {HTTPS_ONLY}" in refused["history"][-1]["detail"]
        assert web_push.attempts == []
    finally:
        acme.client.close()
        herald.stop()
        closed.start_worker()


def _restart_worker_with(herald: Herald, allow: list[str]) -> None:
    herald.kill("worker")
    herald.config["outbound"] = {"allow": allow}
    herald.config_file.write_text(yaml.safe_dump(herald.config))
    herald.start_worker()


def test_a_worker_refuses_to_start_with_an_fcm_url_on_a_loopback_address(tmp_path, pg):
    with FcmService() as fcm:
        account = tmp_path / "fcm-service-account.json"
        account.write_text(json.dumps(fcm.service_account_info()))
        herald = Herald(tmp_path, outbound={"allow": []},
                        fcm={"service_account_file": str(account), "base_url": fcm.base_url})
        try:
            result = herald.cli("worker")
        except subprocess.TimeoutExpired:
            pytest.fail("the worker started")
    assert result.returncode == 2
    assert f"fcm.base_url {fcm.base_url} is refused: {HTTPS_ONLY}" in result.stderr
