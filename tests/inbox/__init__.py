"""Shared helpers for the in-app inbox tests (feed API, websocket stream, browser).

Everything runs against real `herald serve` / `herald worker` processes (see
tests/harness.py): directory data goes in through the service API with the
tenant key, events through POST /v1/events, and receivers read with user
tokens signed by the tenant's signing secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

import httpx
import jsonschema_rs

from router.core.security import mint_user_token
from tests.harness import Client, Herald, free_port, wait_until

AVATAR = "https://avatars.herald.test/max.png"
ACTOR = {"id": "max", "kind": "employee", "name": "Max Muster", "avatar_url": AVATAR}
LINKS = {"ticket": "https://app.herald.test/tickets/{id}?n={number}",
         "task": "https://app.herald.test/tasks/{id}",
         "video_session": "https://app.herald.test/video/{id}",
         "code": "https://app.herald.test/codes/{id}",
         "device": "https://app.herald.test/devices/{id}"}


def seed_people(client: Client) -> None:
    """alice and bob (English), greta (German), max (the usual actor)."""
    people = [{"id": "alice", "name": "Alice Adams", "language": "en"},
              {"id": "bob", "name": "Bob Brown", "language": "en"},
              {"id": "greta", "name": "Greta Graf", "language": "de"},
              {"id": "max", "name": "Max Muster", "avatar_url": AVATAR}]
    for person in people:  # no email, no push: the browser channel only
        response = client.put(f"/v1/users/{person['id']}", json=person)
        assert response.status_code == 204, response.text


def event(subject_id: str, etype: str = "ticket.created", *, creator: str = "alice",
          number: str | None = None, participants: list[str] | None = None,
          actor: dict[str, Any] | None = ACTOR, **data: Any) -> dict[str, Any]:
    """An event whose subject was created by `creator`, so the creator rule reaches them."""
    kind = etype.split(".")[0]
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex, "type": etype,
        "subject": {"kind": kind, "id": subject_id, "number": number or f"#{subject_id}",
                    "creator_id": creator, "participants": participants or []},
        "data": data or {"title": f"About {subject_id}"}}
    if actor is not None:
        body["actor"] = actor
    return body


def publish(client: Client, *events: dict[str, Any]) -> list[str]:
    """Publish and wait until every event is routed (its feed rows are then written)."""
    if len(events) == 1:
        response = client.post("/v1/events", json=events[0])
    else:
        response = client.post("/v1/events:batch", json=list(events))
    assert response.status_code == 202, response.text
    ids = [e["id"] for e in events]
    for event_id in ids:
        wait_until(lambda i=event_id: client.activity(i)["status"] == "routed", 20, 0.05,
                   what=f"event {event_id} routed")
    return ids


def wait_delivered(client: Client, event_id: str) -> None:
    """Wait until every delivery of the event is done (browser: published live)."""
    def done() -> bool:
        act = client.activity(event_id)
        return act["status"] == "routed" and all(
            d["status"] in ("sent", "failed", "skipped") for d in act["deliveries"])
    wait_until(done, 20, 0.05, what=f"deliveries of {event_id}")


def user_token(secret: str, tenant: str, user_id: str, ttl: timedelta = timedelta(hours=1)
               ) -> str:
    return mint_user_token(secret, tenant, user_id, ttl)


class Inbox:
    """A receiver's own HTTP client (`/v1/me/...`) holding one user or access token."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=30)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(path, **kw)

    def delete(self, path: str, json: Any = None) -> httpx.Response:
        return self.http.request("DELETE", path, json=json)

    def items(self, **params: Any) -> list[dict[str, Any]]:
        response = self.http.get("/v1/me/notifications", params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def unread(self) -> int:
        response = self.http.get("/v1/me/notifications/unread-count")
        assert response.status_code == 200, response.text
        return response.json()["unread"]

    def read(self, item_id: int) -> httpx.Response:
        return self.http.post(f"/v1/me/notifications/{item_id}/read")


def start_replica(herald: Herald, name: str) -> str:
    """A second `herald serve` of the same deployment (same config, another port)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    herald._spawn(name, "serve", "--port", str(port))

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 30, what=f"{name} on {url}")
    return url


def start(herald: Herald, replicas: int = 0) -> list[str]:
    """Start the API, `replicas` more API processes and one worker, side by side
    (each takes seconds to import and load rules); returns the extra replicas' urls."""
    with ThreadPoolExecutor(max_workers=replicas + 2) as pool:
        jobs = [pool.submit(herald.start_api, "api"), pool.submit(herald.start_worker)]
        extra = [pool.submit(start_replica, herald, f"api-{n + 2}") for n in range(replicas)]
        for job in jobs:
            job.result()
        return [job.result() for job in extra]


@contextmanager
def deployed(folder: Path, replicas: int = 0, **config: Any) -> Iterator[Herald]:
    """A module's deployment without SMTP: API (plus replicas) and a worker, stopped at
    the end whatever happens."""
    herald = Herald(folder, smtp={"port": 1}, **config)
    try:
        start(herald, replicas)
        yield herald
    finally:
        herald.stop()


@contextmanager
def people_tenant(url: str, new_tenant_key: Callable[[], tuple[str, str, str]],
                  seed: Callable[[Client], None] | None = None
                  ) -> Iterator[tuple[str, str, Client]]:
    """(tenant id, signing secret, service client) of a fresh tenant with people in it."""
    tenant_id, key, secret = new_tenant_key()
    with Client(url, key) as client:
        (seed or seed_people)(client)
        yield tenant_id, secret, client


@contextmanager
def receivers(url: str, tenant: tuple[str, str, Client]) -> Iterator[Callable[[str], Inbox]]:
    """Open a receiver's own client by user id: open("alice"); all closed at the end."""
    tenant_id, secret, _ = tenant
    opened: list[Inbox] = []

    def open_as(user_id: str) -> Inbox:
        opened.append(Inbox(url, user_token(secret, tenant_id, user_id)))
        return opened[-1]

    try:
        yield open_as
    finally:
        for box in opened:
            box.close()


def frame_checker(document: dict[str, Any]) -> Callable[[dict[str, Any]], str | None]:
    """Checks a websocket frame against its message's payload schema in an AsyncAPI
    document; returns what is wrong, or None. Every object is closed for the check
    (the document lets frames grow), so a field the document does not name is caught."""
    components = _closed(document["components"])
    validators = {name: jsonschema_rs.validator_for({
        "components": components, "$ref": message["payload"]["$ref"]})
        for name, message in document["components"]["messages"].items()}

    def check(frame: dict[str, Any]) -> str | None:
        validator = validators.get(str(frame.get("type")))
        if validator is None:
            return f"no message {frame.get('type')!r} in the document"
        errors = [str(e) for e in validator.iter_errors(frame)]
        return "; ".join(errors) or None

    return check


def _closed(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {k: _closed(v) for k, v in schema.items()}
    if "properties" in closed and closed.get("type") == "object":
        closed.setdefault("additionalProperties", False)
    return closed
