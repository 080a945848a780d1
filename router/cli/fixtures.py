"""Directory fixtures in YAML: for `herald rules explain/test`, the demo and tests.

Shape::

    tenant: {default_language: en}
    users: [{id: sup1, kind: employee, roles: [admin], email: ..., language: de}]
    departments: [{id: support, members: [sup1]}]
    teams: [{id: night, members: [sup2]}]
    templates: [{id: tpl, groups: {notification_receivers: [{id: g1, members: [{kind: user, id: sup1}]}]}}]
    subjects: [{kind: ticket, id: T-1, number: "#1", template_id: tpl}]
    subscriptions: [{id: cu1, subject_kind: ticket, subject_id: T-1, email: a@b.c}]
    settings: {sup1: {email: false}}
    push_devices: {sup1: [fcm-token-1]}      # users with a registered app device
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from router.core.enums import MemberKind, PushKind
from router.core.errors import Problem, ValidationFailed
from router.directory import directory as d
from router.directory.quiet import overlaps
from router.directory.settings import SettingsIn
from router.routing.events import problems_from
from router.store import models as m

SECTIONS = ("tenant", "users", "departments", "teams", "templates", "subjects",
            "subscriptions", "settings", "push_devices")


def load_fixture(s: Session, tenant: str, data: dict[str, Any]) -> None:
    """Write a fixture into tenant's directory; all problems are reported at once."""
    problems: list[Problem] = []
    unknown = set(data or {}) - set(SECTIONS)
    problems += [Problem(f"unknown section {k!r} (known: {', '.join(SECTIONS)})", path=k)
                 for k in sorted(unknown)]
    data = data or {}
    if "default_language" in (data.get("tenant") or {}):
        row = s.get(m.Tenant, tenant)
        if row is not None:
            row.default_language = data["tenant"]["default_language"]
    steps = [
        ("users", d.UserIn, lambda x: d.put_user(s, tenant, x)),
        ("departments", d.UnitIn, lambda x: d.put_unit(s, tenant, MemberKind.DEPARTMENT, x)),
        ("teams", d.UnitIn, lambda x: d.put_unit(s, tenant, MemberKind.TEAM, x)),
        ("templates", d.TemplateIn, lambda x: d.put_template(s, tenant, x)),
        ("subjects", d.SubjectIn, lambda x: d.put_subject(s, tenant, x)),
        ("subscriptions", d.SubscriptionIn, lambda x: d.put_subscription(s, tenant, x)),
    ]
    for section, model, put in steps:
        for i, raw in enumerate(data.get(section) or []):
            problems += _apply(model, raw, put, f"{section}.{i}.")
        s.flush()
    for uid, raw in (data.get("settings") or {}).items():
        problems += _apply(SettingsIn, raw, lambda x, u=uid: _put_settings(s, tenant, u, x),
                           f"settings.{uid}.")
    for uid, tokens in (data.get("push_devices") or {}).items():
        s.add_all(m.PushTarget(tenant_id=tenant, user_id=uid, kind=PushKind.FCM, endpoint=t)
                  for t in tokens)
    if problems:
        raise ValidationFailed(problems)
    s.flush()


def _put_settings(s: Session, tenant: str, uid: str, settings: SettingsIn) -> None:
    clashes = overlaps(settings.quiet_hours)
    if clashes:
        raise ValueError("; ".join(f"{path}: {why}" for path, why in clashes))
    d.put_settings(s, tenant, uid, settings)


def _apply(model: Any, raw: Any, put: Any, prefix: str) -> list[Problem]:
    try:
        put(model.model_validate(raw))
    except ValidationError as exc:
        return problems_from(exc, prefix)
    except Exception as exc:  # noqa: BLE001 - NotFound etc. from the service layer
        return [Problem(str(exc), path=prefix.rstrip("."))]
    return []
