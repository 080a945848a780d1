"""Factory helpers for directory data: one call per thing a test needs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from router.core.enums import DeliveryStatus, EventStatus, MemberKind
from router.core.security import hash_secret
from router.directory import directory as d
from router.directory.quiet import WEEKDAYS
from router.routing.events import Event
from router.store import models as m


def new_tenant(s: Session, name: str = "Acme", language: str = "en") -> m.Tenant:
    tenant = m.Tenant(id=f"t-{uuid.uuid4().hex[:12]}", name=name,
                      api_key_hash=hash_secret(uuid.uuid4().hex), signing_secret=uuid.uuid4().hex,
                      default_language=language)
    s.add(tenant)
    s.flush()
    return tenant


def employee(s: Session, tenant: str, uid: str, roles: list[str] | None = None, **kw: Any) -> str:
    kw.setdefault("email", f"{uid}@staff.example")
    kw.setdefault("name", uid.title())
    d.put_user(s, tenant, d.UserIn(id=uid, kind="employee", roles=roles or [], **kw))
    return uid


def customer(s: Session, tenant: str, uid: str, org: str, **kw: Any) -> str:
    kw.setdefault("email", f"{uid}@customer.example")
    d.put_user(s, tenant, d.UserIn(id=uid, kind="customer", org_id=org, **kw))
    return uid


def unit(s: Session, tenant: str, kind: MemberKind, uid: str, members: list[str]) -> str:
    d.put_unit(s, tenant, kind, d.UnitIn(id=uid, members=members))
    return uid


def template(s: Session, tenant: str, tid: str, **groups: list[dict[str, Any]]) -> str:
    """template(s, t, "tpl", notification_receivers=[{"id": "g1", "members": [...]}])"""
    d.put_template(s, tenant, d.TemplateIn(id=tid, groups=groups))
    return tid


def users(*ids: str) -> list[dict[str, str]]:
    return [{"kind": "user", "id": i} for i in ids]


def subscription(s: Session, tenant: str, sid: str, subject_id: str, kind: str = "ticket",
                 **kw: Any) -> str:
    d.put_subscription(s, tenant, d.SubscriptionIn(id=sid, subject_kind=kind,
                                                   subject_id=subject_id, **kw))
    return sid


def settings(s: Session, tenant: str, uid: str, **kw: Any) -> None:
    d.put_settings(s, tenant, uid, d.SettingsIn(**kw))


def event(etype: str, tenant: str = "", subject: dict[str, Any] | None = None,
          actor: str | None = None, **kw: Any) -> Event:
    kind = etype.split(".")[0]
    body: dict[str, Any] = {"id": kw.pop("id", uuid.uuid4().hex), "type": etype, "tenant": tenant,
                            "subject": {"kind": kind, "id": "S-1", "number": "#1",
                                        **(subject or {})},
                            "data": kw.pop("data", {"title": "T", "message": "M"})}
    if actor:
        body["actor"] = {"id": actor, "name": actor.title()}
    body.update(kw)
    return Event.model_validate(body)


def settle(s: Session, tenant: str) -> None:
    """Settle the rows a test wrote by hand for this tenant (events `routed`, open deliveries
    `skipped`): the test session's schema is shared, and any later deployment's worker would
    otherwise route those events and send those deliveries (the lost-message pass and the
    sweeper take every tenant's work), to addresses and peers long gone."""
    s.execute(update(m.Delivery).where(
        m.Delivery.tenant_id == tenant,
        m.Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
        .values(status=DeliveryStatus.SKIPPED, next_attempt_at=None))
    s.execute(update(m.EventRow).where(m.EventRow.tenant_id == tenant,
                                       m.EventRow.status != EventStatus.ROUTED)
              .values(status=EventStatus.ROUTED))


def quiet_window_around(now: datetime, zone: str, before_s: int, after_s: int) -> dict[str, Any]:
    """A quiet window (as the settings API takes it) from ``before_s`` before ``now`` to
    ``after_s`` after it, in ``zone``'s wall time, on the weekday it starts."""
    tz = ZoneInfo(zone)
    start = (now - timedelta(seconds=before_s)).astimezone(tz)
    end = (now + timedelta(seconds=after_s)).astimezone(tz)
    return {"days": [WEEKDAYS[start.weekday()]], "from": _clock(start), "to": _clock(end)}


def _clock(at: datetime) -> str:
    """HH:MM:SS, or HH:MM on a whole minute: the way Herald says a local time back."""
    return f"{at:%H:%M:%S}"[:8 if at.second else 5]
