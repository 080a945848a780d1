"""`herald demo`: a demo tenant with a realistic directory, and local catchers.

The demo tenant gets a fresh API key on every run (only hashes are stored, so
the old one cannot be shown again). `--serve` also starts a local SMTP catcher
that writes every mail to ./mailbox/ (listed at /demo/mailbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from router.api.demo import MAILBOX
from router.cli.fixtures import load_fixture
from router.core.config import Config
from router.core.security import hash_secret, new_secret
from router.directory import console_keys, tenants
from router.runtime import Runtime
from router.store.models import Tenant

DEMO_TENANT = "demo"
DEMO_USER = "ana"

DIRECTORY = {
    "users": [
        {"id": "ana", "kind": "employee", "name": "Ana Schmidt", "email": "ana@acme.example",
         "language": "de", "roles": ["admin"],
         "avatar_url": "https://i.pravatar.cc/96?u=ana"},
        {"id": "ben", "kind": "employee", "name": "Ben Ortiz", "email": "ben@acme.example",
         "language": "en", "roles": ["moderator"]},
        {"id": "cleo", "kind": "employee", "name": "Cleo Park", "email": "cleo@acme.example",
         "roles": ["technician"]},
        {"id": "dev", "kind": "employee", "name": "Dev Patel", "email": "dev@acme.example",
         "roles": ["technician"]},
        {"id": "eve", "kind": "employee", "name": "Eve Müller", "email": "eve@acme.example",
         "language": "de", "roles": ["technician"]},
        {"id": "cust-1", "kind": "customer", "name": "Carla (Globex)", "org_id": "globex",
         "email": "carla@globex.example"},
        {"id": "cust-2", "kind": "customer", "name": "Gus (Globex)", "org_id": "globex",
         "email": "gus@globex.example", "language": "de"},
    ],
    "departments": [{"id": "field-service", "name": "Field service", "members": ["cleo", "dev"]}],
    "teams": [{"id": "night-shift", "name": "Night shift", "members": ["eve"]}],
    "templates": [{
        "id": "elevators", "name": "Elevator maintenance",
        "groups": {
            "notification_receivers": [
                {"id": "supervisors", "name": "Supervisors",
                 "members": [{"kind": "user", "id": "ana"},
                             {"kind": "department", "id": "field-service"}]},
                {"id": "night", "name": "Night escalation",
                 "members": [{"kind": "team", "id": "night-shift"}]}],
            "offer_receivers": [{"id": "fleet", "members": [{"kind": "user", "id": "ben"}]}],
            "call_participants": [{"id": "remote", "members": [{"kind": "user", "id": "ana"},
                                                              {"kind": "user", "id": "cleo"}]}],
        }}],
    "subjects": [
        {"kind": "ticket", "id": "T-1042", "number": "#1042", "template_id": "elevators",
         "customer_org_id": "globex", "creator_id": "cleo", "code_id": "QR-7"},
        {"kind": "code", "id": "QR-7", "number": "QR-7"},
    ],
    "subscriptions": [
        {"id": "anon-1", "subject_kind": "ticket", "subject_id": "T-1042", "code_id": "QR-7",
         "email": "visitor@example.com", "language": "de"},
    ],
}


@dataclass(frozen=True)
class DemoInfo:
    api_key: str
    user_token: str
    console_key: str


def load(runtime: Runtime) -> DemoInfo:
    with runtime.db.session() as s:
        if s.get(Tenant, DEMO_TENANT) is None:
            s.add(Tenant(id=DEMO_TENANT, name="Acme Elevators (demo)",
                         api_key_hash=hash_secret(new_secret()), signing_secret=new_secret("hs_"),
                         default_language="en"))
            s.flush()
        load_fixture(s, DEMO_TENANT, DIRECTORY)
        key = tenants.new_api_key(s, DEMO_TENANT)
        token = tenants.user_token(s, DEMO_TENANT, DEMO_USER, timedelta(days=7))
        for old in console_keys.listing(s, DEMO_TENANT):  # a fresh one each run, like the key
            console_keys.revoke(s, DEMO_TENANT, old.id)
        _row, console = console_keys.create(s, DEMO_TENANT, "demo")
    return DemoInfo(key, token, console)


def banner(info: DemoInfo, config: Config) -> str:
    base = config.public_url.rstrip("/")
    event = ('{"id": "demo-1", "type": "ticket.created", "actor": {"id": "cust-1", '
             '"name": "Carla"}, "subject": {"kind": "ticket", "id": "T-1042", "number": '
             '"#1042"}, "data": {"title": "Elevator 3 stuck between floors"}}')
    return f"""
Herald demo tenant "{DEMO_TENANT}" is loaded.

  API key (service side):  {info.api_key}
  Inbox, settings (Ana, admin): {base}/demo?token={info.user_token}
  Admin console:                {base}/console   (console key: {info.console_key})
  API docs:                     {base}/docs
  Mailbox (local catcher):      {base}/demo/mailbox   (files in ./{MAILBOX}/)

Publish an event:
  curl -s -X POST {base}/v1/events -H "Authorization: Bearer {info.api_key}" \\
       -H "Content-Type: application/json" -d '{event}'
See what happened to it:
  curl -s {base}/v1/events/demo-1 -H "Authorization: Bearer {info.api_key}"
"""


def start_catchers(config: Config) -> None:
    """A local SMTP catcher on the configured port, writing .eml files to ./mailbox/."""
    from router.cli.mailcatcher import start

    start(config.smtp.host, config.smtp.port, MAILBOX)
