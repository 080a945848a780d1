"""Failures: failed deliveries grouped by channel and error, with the provider's answer,
and failed events; retry one, the selected, a whole group, or everything."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.api.console.base import json_or_page, routes
from router.api.console.session import AdminDep, check_csrf, form
from router.api.deps import RuntimeDep
from router.core.errors import NotFound, Problem, ValidationFailed
from router.delivery import redrive
from router.runtime import Runtime
from router.store import models as m


@routes.get("/failures")
def failures(request: Request, runtime: RuntimeDep, admin: AdminDep) -> Response:
    with runtime.db.session() as s:
        groups = redrive.failed_groups(s, admin.tenant)
        events = [{"id": e.event_id, "type": e.type, "attempts": e.attempts, "error": e.error,
                   "received_at": e.received_at.isoformat(timespec="seconds")}
                  for e in redrive.failed_events(s, admin.tenant)]
    data = {"groups": [{"channel": g.channel, "error": g.error, "count": g.count,
                        "deliveries": [dict(r._mapping) | {"updated_at": r.updated_at.isoformat()}
                                       for r in g.rows]} for g in groups],
            "events": events}
    done = request.query_params.get("redriven", "")
    return json_or_page(request, data, "failures.html", admin, groups=groups, events=events,
                        redriven=done.split(",") if done.count(",") == 1 else None)


def _ids(s: Session, tenant: str, values: list[str]) -> list[int]:
    """The tenant's delivery ids; another tenant's (or no) delivery is a 404."""
    if not all(v.isdigit() and len(v) < 19 for v in values):
        raise ValidationFailed([Problem("delivery ids are whole numbers", path="id")])
    ids = {int(v) for v in values}
    own = set(s.scalars(select(m.Delivery.id).where(m.Delivery.tenant_id == tenant,
                                                    m.Delivery.id.in_(ids))))
    if ids - own:
        raise NotFound(f"delivery {min(ids - own)} not found")
    return sorted(ids)


def _redrive(runtime: Runtime, tenant: str, fields: dict[str, list[str]]) -> tuple[int, int]:
    """What the form asked for: `ids` (one or the selected), a `group` ("channel\\terror"),
    `events` (failed events by id) or `all`. Returns (events, deliveries) re-driven."""
    what = (fields.get("what") or [""])[0]
    with runtime.db.session() as s:
        pks: list[int] = []
        if what == "ids":
            by_channel = redrive.redrive(s, tenant, ids=_ids(s, tenant, fields.get("id", [])))
        elif what == "group":
            channel, _, error = (fields.get("group") or [""])[0].partition("\t")
            by_channel = redrive.redrive(s, tenant, channel=channel, error=error)
        elif what == "events":
            pks, by_channel = redrive.reroute(s, tenant, fields.get("event", [])), {}
        elif what == "all":
            pks, by_channel = redrive.reroute(s, tenant), redrive.redrive(s, tenant)
        else:
            raise ValidationFailed([Problem("one of ids, group, events, all", path="what")])
    runtime.workers.enqueue_route(pks)
    runtime.workers.enqueue_deliveries(by_channel)
    return len(pks), sum(len(v) for v in by_channel.values())


@routes.post("/failures/retry")
async def retry(request: Request, runtime: RuntimeDep, admin: AdminDep) -> Response:
    fields = await form(request)
    check_csrf(admin, fields)
    if fields.get("what") == ["ids"] and not fields.get("id"):
        raise ValidationFailed([Problem("select at least one delivery", path="id")])
    events, deliveries = _redrive(runtime, admin.tenant, fields)
    if request.headers.get("authorization"):
        return json_or_page(request, {"events": events, "deliveries": deliveries},
                            "failures.html", admin)
    back = (fields.get("back") or ["/console/failures"])[0]
    back = back if back.startswith("/console/") and "//" not in back else "/console/failures"
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}redriven={events},{deliveries}", status_code=303)
