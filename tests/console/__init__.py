"""The admin console against a real deployment: `herald serve` + `herald worker`,
PostgreSQL, Redis and the SMTP sink. Helpers: a tenant with a directory and a console
key made by the CLI, and a signed-in console session (cookie + CSRF token)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.harness import Client, Herald

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Tenant:
    id: str
    api_key: str
    signing_secret: str
    console_key: str
    client: Client


def console_key(herald: Herald, tenant: str, name: str = "ops") -> str:
    """`herald console-key create`: the secret is on its own line, starting hc_."""
    done = herald.cli("console-key", "create", "--tenant", tenant, "--name", name)
    assert done.returncode == 0, done.stdout + done.stderr
    [secret] = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("hc_")]
    return secret


def seed(client: Client, prefix: str = "") -> None:
    """Staff, a template with supervisors, a customer org and a stored ticket."""
    for uid, roles in (("ana", ["admin"]), ("ben", ["moderator"]), ("cleo", ["technician"])):
        assert client.put(f"/v1/users/{uid}", json={
            "kind": "employee", "name": uid.title(), "email": f"{prefix}{uid}@acme.example",
            "roles": roles}).status_code == 204
    assert client.put("/v1/users/carla", json={
        "kind": "customer", "name": "Carla", "email": f"{prefix}carla@globex.example",
        "org_id": "globex"}).status_code == 204
    assert client.put("/v1/templates/elevators", json={"groups": {"notification_receivers": [
        {"id": "supervisors", "members": [{"kind": "user", "id": "ana"},
                                          {"kind": "user", "id": "cleo"}]}]}}).status_code == 204
    assert client.put("/v1/subjects/ticket/T-1", json={
        "number": "#1", "template_id": "elevators", "customer_org_id": "globex",
        "creator_id": "ben"}).status_code == 204
    assert client.put("/v1/users/cleo/settings", json={"advanced": {
        "ticket.created": {"channels": ["browser", "email"], "strategy": "first_success"}}}
        ).status_code == 200


def ticket_event(event_id: str, subject: str = "T-1", etype: str = "ticket.created") -> dict:
    return {"id": event_id, "type": etype, "actor": {"id": "carla", "name": "Carla"},
            "subject": {"kind": "ticket", "id": subject, "number": f"#{subject}"},
            "data": {"title": "Elevator 3 stuck"}}


def new_tenant(herald: Herald, pg: Any, prefix: str = "") -> Tenant:
    from router.directory import tenants

    with pg.session() as s:
        made = tenants.create(s, f"Acme {prefix}", tenant_id=f"t-{uuid.uuid4().hex[:10]}")
    client = Client(herald.url, made.api_key)
    seed(client, prefix)
    return Tenant(made.tenant_id, made.api_key, made.signing_secret,
                  console_key(herald, made.tenant_id), client)


class Console:
    """A browser-like console session: signed in through the form, cookie kept."""

    def __init__(self, url: str, key: str, lang: str = "en") -> None:
        self.http = httpx.Client(base_url=url, timeout=30, follow_redirects=False,
                                 headers={"Accept": "text/html", "Accept-Language": lang})
        answer = self.http.post("/console/login", data={"key": key, "next": "/console/rules"})
        assert answer.status_code == 303, answer.text
        self.set_cookie = answer.headers["set-cookie"]
        self.csrf = ""

    def get(self, path: str, **kw: Any) -> httpx.Response:
        answer = self.http.get(path, **kw)
        found = CSRF.search(answer.text)
        self.csrf = found.group(1) if found else self.csrf
        return answer

    def page(self, path: str, **kw: Any) -> str:
        answer = self.get(path, **kw)
        assert answer.status_code == 200, (answer.status_code, answer.text[:2000])
        return answer.text

    def post(self, path: str, data: dict[str, Any], csrf: bool = True) -> httpx.Response:
        if not self.csrf:
            self.get("/console/rules")
        return self.http.post(path, data={**({"csrf": self.csrf} if csrf else {}), **data})

    def close(self) -> None:
        self.http.close()


def text_of(html: str) -> str:
    """The page's text, tags dropped and whitespace folded (what a reader sees)."""
    import html as entities

    return re.sub(r"\s+", " ", entities.unescape(re.sub(r"<[^>]+>", " ", html)))
