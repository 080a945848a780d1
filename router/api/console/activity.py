"""Activity: search the tenant's events by id, type, subject, receiver and time; an
event's page with matched rules, receivers, and every delivery's status history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy import String, cast, exists, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from router.api.console.base import json_or_page, routes
from router.api.console.session import AdminDep
from router.api.deps import RuntimeDep
from router.api.service import activity_of
from router.core.errors import Problem, ValidationFailed
from router.core.inputs import INT_MAX
from router.routing.planner import receiver_count
from router.store import models as m

Text = Annotated[str, Query(max_length=200)]
PAGE = 50


def _moment(raw: str, field: str) -> datetime | None:
    """`2026-05-04T10:30` (a datetime-local field, UTC) or a full ISO time."""
    if not raw:
        return None
    try:
        found = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed([Problem("a date and time such as 2026-05-04T10:30 (UTC)",
                                        path=field)]) from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _receiver_filter(s: Session, receiver: str) -> Any:
    """Events that reached this receiver: a delivery row, or a receiver of the stored plan
    (browser deliveries settled at routing have no row)."""
    delivered = exists().where(m.Delivery.event_pk == m.EventRow.pk,
                               m.Delivery.tenant_id == m.EventRow.tenant_id,
                               m.Delivery.receiver_id == receiver)
    if s.get_bind().dialect.name == "postgresql":
        plan = cast(m.EventRow.plan, JSONB)
        planned = or_(plan.contains({"receiver_groups": [{"ids": [receiver]}]}),
                      plan.contains({"receivers": [{"id": receiver}]}))  # stored ungrouped
    else:  # the embedded SQLite: a text search (may also match a name equal to the id)
        planned = cast(m.EventRow.plan, String).contains(f'"{receiver}"')
    return or_(delivered, planned)


def search(s: Session, tenant: str, q: dict[str, str], before: int | None) -> list[dict[str, Any]]:
    query = select(m.EventRow).where(m.EventRow.tenant_id == tenant)
    if q["event_id"]:
        query = query.where(m.EventRow.event_id.startswith(q["event_id"], autoescape=True))
    if q["type"]:
        query = query.where(m.EventRow.type == q["type"])
    if q["subject"]:
        query = query.where(or_(m.EventRow.payload["subject"]["id"].as_string() == q["subject"],
                                m.EventRow.payload["subject"]["number"].as_string() == q["subject"]))
    if q["receiver"]:
        query = query.where(_receiver_filter(s, q["receiver"]))
    since, until = _moment(q["since"], "since"), _moment(q["until"], "until")
    if since:
        query = query.where(m.EventRow.received_at >= since)
    if until:
        query = query.where(m.EventRow.received_at <= until)
    if before:
        query = query.where(m.EventRow.pk < before)
    rows = s.scalars(query.order_by(m.EventRow.pk.desc()).limit(PAGE))
    return [{"pk": r.pk, "id": r.event_id, "type": r.type, "status": r.status,
             "subject": (r.payload or {}).get("subject") or {},
             "received_at": r.received_at.isoformat(timespec="seconds"),
             "receivers": receiver_count(r.plan),
             "nobody": len((r.plan or {}).get("nobody", []))} for r in rows]


@routes.get("/activity")
def activity(request: Request, runtime: RuntimeDep, admin: AdminDep, event_id: Text = "",
             type: Text = "", subject: Text = "", receiver: Text = "", since: Text = "",
             until: Text = "", before: Annotated[int | None, Query(ge=1, le=INT_MAX)] = None
             ) -> Response:
    q = {"event_id": event_id, "type": type, "subject": subject, "receiver": receiver,
         "since": since, "until": until}
    with runtime.db.session() as s:
        events = search(s, admin.tenant, q, before)
    older = events[-1]["pk"] if len(events) == PAGE else None
    return json_or_page(request, {"events": events, "older": older}, "activity.html", admin,
                        events=events, q=q, older=older,
                        types=list(runtime.engine.ruleset.events))


@routes.get("/activity/{event_id}")
def event_page(request: Request, runtime: RuntimeDep, admin: AdminDep, event_id: str) -> Response:
    with runtime.db.session() as s:
        view = activity_of(s, admin.tenant, event_id)
    return json_or_page(request, view, "event.html", admin, event=view)
