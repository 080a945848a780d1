"""Shared helpers for the preference-center tests (`/v1/me/preferences` and friends, and
the <herald-preferences> component): people of every receiver kind in a fresh tenant,
created through the service API of real `herald serve` / `herald worker` processes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from router.delivery import access
from router.store.db import Database
from tests.harness import Client

PEOPLE = [
    {"id": "alice", "name": "Alice Adams", "language": "en"},  # an employee without roles
    {"id": "greta", "name": "Greta Graf", "language": "de"},
    {"id": "ada", "name": "Ada Admin", "language": "en", "roles": ["admin"]},
    {"id": "carla", "name": "Carla Kunde", "kind": "customer", "org_id": "O-1", "language": "de"},
]
CODE_TYPES = ["code.paired", "code.deactivated", "device.created"]  # admins' and moderators'


def seed_people(client: Client) -> None:
    for person in PEOPLE:
        response = client.put(f"/v1/users/{person['id']}", json=person)
        assert response.status_code == 204, response.text


def sign_up_code_user(client: Client, pg: Database, tenant_id: str, sub_id: str = "cu1",
                      subject_id: str = "T-4711") -> str:
    """A code user signed up for email about one ticket; returns their access token."""
    response = client.put(f"/v1/subjects/ticket/{subject_id}", json={
        "kind": "ticket", "id": subject_id, "number": f"#{subject_id[2:]}", "code_id": "QR-17"})
    assert response.status_code == 204, response.text
    response = client.put(f"/v1/subscriptions/{sub_id}", json={
        "id": sub_id, "subject_kind": "ticket", "subject_id": subject_id, "code_id": "QR-17",
        "email": "visitor@example.com", "language": "de", "created_by": "employee"})
    assert response.status_code == 204, response.text
    with pg.session() as s:
        token, _ = access.issue(s, tenant_id, "QR-17", ("ticket", subject_id), sub_id,
                                datetime.now(UTC), 14)
    return token


def problems(response: Any) -> dict[str, str]:
    """A 422's problems by field path."""
    assert response.status_code == 422, response.text
    return {p["path"]: p["message"] for p in response.json()["error"]["problems"]}
