"""Service-side endpoints (tenant API key): publish, explain, activity, directory."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.api.deps import PublisherDep, RuntimeDep, TenantDep
from router.api.errors import documented
from router.api.publisher import Publisher
from router.core.enums import MemberKind, SubjectKind
from router.core.errors import NotFound, Problem, ValidationFailed
from router.core.inputs import INT_MAX
from router.delivery import deliveries, folding, timers
from router.directory import directory as d
from router.directory.audience import DirectoryView
from router.directory.push_validation import endpoint_problems
from router.directory.settings import SettingsIn
from router.routing.events import Event, problems_from, unknown_type
from router.routing.pipeline import Published, store_signups
from router.routing.planner import expand, plan_event
from router.runtime import Runtime
from router.store import models as m

log = logging.getLogger("herald.api")
routes = APIRouter(prefix="/v1", responses=documented(401, 404, 413, 422, 429, 503))
MAX_BATCH = 1000


EVENT_EXAMPLES: dict[str, Any] = {
    "ticket": {"summary": "A ticket created by an employee", "value": {
        "id": "evt-4710", "type": "ticket.created",
        "actor": {"id": "emp-7", "name": "Dana Fixer"},
        "subject": {"kind": "ticket", "id": "T-4710", "number": "#4710",
                    "template_id": "tpl-elevators", "creator_id": "emp-7"},
        "data": {"title": "Elevator stuck", "message": "Between floors 3 and 4"}}},
    "signups": {"summary": "A code user creates a ticket and signs up for email and push",
                "value": {
        "id": "evt-4711", "type": "ticket.created",
        "actor": {"id": "code-user", "kind": "code_user"},
        "subject": {"kind": "ticket", "id": "T-4711", "number": "#4711",
                    "template_id": "tpl-elevators", "code_id": "QR-17", "language": "de"},
        "data": {"title": "Aufzug steckt fest"},
        "signups": [{"email": "visitor@example.com", "language": "de", "push_subscription": {
            "endpoint": "https://push.example.net/send/abc123",
            "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-"
                               "Ts1XbjhazAkj7I99e8QcYP7DkM",
                     "auth": "tBHItJI5svbpez7KI4CCXg"}}}]}},
}


class Accepted(BaseModel):
    id: str
    status: str
    duplicate: bool = False


class BatchAccepted(BaseModel):
    accepted: list[Accepted]


def _events(runtime: Runtime, tenant: str, body: list[Event], prefix: bool) -> list[Event]:
    """Events the body model validated, checked against the catalogue and the key's tenant."""
    known = runtime.engine.ruleset.events
    problems: list[Problem] = []
    events: list[Event] = []
    for i, event in enumerate(body):
        where = f"{i}." if prefix else ""
        try:
            problems += unknown_type(event.type, known, where)
            for n, signup in enumerate(event.signups):
                problems += _push_problems(runtime.config.outbound.allow, signup,
                                           f"{where}signups.{n}.")
            events.append(_check_tenant(event, tenant, where))
        except ValidationFailed as exc:
            problems += exc.problems
    if problems:
        raise ValidationFailed(problems)
    return events


def _check_tenant(event: Event, tenant: str, prefix: str) -> Event:
    if event.tenant and event.tenant != tenant:
        raise ValidationFailed([Problem("does not match the API key's tenant",
                                        path=prefix + "tenant")])
    return event.model_copy(update={"tenant": tenant})


def _accepted(p: Published) -> Accepted:
    return Accepted(id=p.event_id, status=p.status, duplicate=not p.new)


@routes.post("/events", status_code=202, response_model=Accepted, tags=["events"])
async def publish_event(runtime: RuntimeDep, tenant: TenantDep, publisher: PublisherDep,
                        body: Annotated[Event, Body(openapi_examples=EVENT_EXAMPLES)]
                        ) -> Accepted:
    """Publish one event. Publishing the same id again returns the same answer (and
    stores its sign-ups only the first time)."""
    events = _events(runtime, tenant, [body], False)
    [published] = await asyncio.wrap_future(publisher.submit(tenant, events))
    return _accepted(published)


BATCH = TypeAdapter(Annotated[list[Event], Field(max_length=MAX_BATCH)])
BATCH_BODY: dict[str, Any] = {"required": True, "content": {"application/json": {"schema": {
    "type": "array", "maxItems": MAX_BATCH, "items": {"$ref": "#/components/schemas/Event"},
    "title": "Body"}}}}


@routes.post("/events:batch", status_code=202, response_model=BatchAccepted, tags=["events"],
             openapi_extra={"requestBody": BATCH_BODY})
async def publish_batch(request: Request, runtime: RuntimeDep, tenant: TenantDep) -> Response:
    """Publish up to 1,000 events at once; one bad event refuses the whole batch. An id
    given twice is published once: later copies answer like a republished event."""
    raw = await request.body()
    return await run_in_threadpool(_publish_batch, runtime, tenant, raw,
                                   request.app.state.publisher)


def _publish_batch(runtime: Runtime, tenant: str, raw: bytes, publisher: Publisher) -> Response:
    """The body is parsed and validated, and the answer written, here in a worker thread,
    not by FastAPI on the event loop: 1,000 events held the loop for ~100 ms, and every
    websocket and request of the process waited (W9: another tenant's live p99)."""
    if not raw.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    try:  # Python's parser, as FastAPI's: a lone surrogate reaches the field's own check
        doc = json.loads(raw)
    except ValueError as exc:
        pos = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", pos),
                                       "msg": "JSON decode error", "input": {},
                                       "ctx": {"error": str(exc)}}]) from None
    try:
        body = BATCH.validate_python(doc)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()],
                                     body=doc) from None
    events = _events(runtime, tenant, body, True)
    answer = BatchAccepted(accepted=[_accepted(p) for p in publisher.publish_now(tenant, events)])
    return Response(answer.model_dump_json(), status_code=202, media_type="application/json")


@routes.post("/events:explain", tags=["events"])
def explain(runtime: RuntimeDep, tenant: TenantDep,
            body: Annotated[Event, Body(openapi_examples=EVENT_EXAMPLES)],
            rules_version: Annotated[int | None, Query(ge=1, le=INT_MAX)] = None
            ) -> dict[str, Any]:
    """Dry run: the routing plan with its reasons (sign-ups included) and the rule set
    version it used (the one in force, or `rules_version`). Nothing is written."""
    event = _events(runtime, tenant, [body], False)[0]
    engine = runtime.rules.engine_for(rules_version)
    with runtime.db.sessions() as s:
        store_signups(s, tenant, event)  # rolled back below
        plan = plan_event(event, DirectoryView(s, tenant), engine)
        s.rollback()
    return plan.as_dict()


@routes.get("/events/{event_id}", tags=["events"])
def activity(runtime: RuntimeDep, tenant: TenantDep, event_id: str) -> dict[str, Any]:
    """What was matched, who got what on which channel, and each delivery's status."""
    with runtime.db.session() as s:
        return activity_of(s, tenant, event_id)


def activity_of(s: Session, tenant: str, event_id: str) -> dict[str, Any]:
    """The activity view of one of the tenant's events (the console's event page too)."""
    row = s.scalars(select(m.EventRow).where(m.EventRow.tenant_id == tenant,
                                             m.EventRow.event_id == event_id)).first()
    if row is None:
        raise NotFound(f"event {event_id!r} not found")
    rows = list(s.scalars(select(m.Delivery).where(m.Delivery.event_pk == row.pk,
                                                   m.Delivery.tenant_id == tenant)
                          .order_by(m.Delivery.receiver_kind, m.Delivery.receiver_id,
                                    m.Delivery.step, m.Delivery.id)))
    waiting = folding.waiting(s, tenant, rows)
    return _activity(row, rows, deliveries.history(s, rows), waiting)


def _activity(row: m.EventRow, rows: list[m.Delivery],
              history: dict[int, list[dict[str, str]]],
              waiting: dict[int, str] | None = None) -> dict[str, Any]:
    plan = expand(row.plan or {})
    return {
        "id": row.event_id, "type": row.type, "status": row.status,
        "subject": (row.payload or {}).get("subject"),
        "received_at": row.received_at.isoformat(),
        "routed_at": row.routed_at.isoformat() if row.routed_at else None,
        "error": row.error, "attempts": row.attempts, "rules_version": row.rules_version,
        "matched_rules": plan.get("matched_rules", []),
        "receivers": plan.get("receivers", []), "dropped": plan.get("dropped", []),
        "notes": plan.get("notes", []),
        "nobody": plan.get("nobody", []),  # selectors of matched rules that found nobody, and why
        "timing": plan.get("timing", []),  # the event type's delay / escalate steps
        "deliveries": sorted(
            [_delivery(r, history[r.id], (waiting or {}).get(r.id)) for r in rows]
            + deliveries.settled_at_routing(plan, rows, row.routed_at),
            key=lambda d: (d["receiver"]["kind"], d["receiver"]["id"], d["step"])),
    }


def _delivery(r: m.Delivery, history: list[dict[str, str]], waiting: str | None = None
              ) -> dict[str, Any]:
    planned = timers.planned_line(r.content, r.channel)
    if planned and history and r.step == 0:  # a timer: say what it waits for
        history[0] = {**history[0], "detail": planned}
    return {
        "id": r.id, "receiver": {"kind": r.receiver_kind, "id": r.receiver_id},
        "channel": r.channel, "status": r.status, "strategy": r.strategy, "step": r.step,
        "remaining_chain": r.chain, "attempts": r.attempts, "last_error": r.last_error,
        "provider_response": r.provider_response,
        "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
        "history": history,
        "status_times": {h["status"]: h["at"] for h in history},
        "waiting": waiting,  # a pending digest: "digest window closes 10:40:00 UTC (4 events so far)"
    }


# ------------------------------------------------------------------ directory


def _write(runtime: Runtime, fn: Any, *args: Any) -> None:
    with runtime.db.session() as s:
        fn(s, *args)


# PUT bodies: the URL names the record, so `id` (and a subject's `kind`) may be left out
# of the body; documented readOnly, and if given it must equal the URL's.
URL_ID = Field(default="", max_length=200, json_schema_extra={"readOnly": True},
               description="Taken from the URL; if given, it must equal it.")
PathId = Annotated[str, Path(min_length=1, max_length=200)]


class UserPut(d.UserIn):
    id: str = URL_ID


class UnitPut(d.UnitIn):
    id: str = URL_ID


class TemplatePut(d.TemplateIn):
    id: str = URL_ID


class SubjectPut(d.SubjectIn):
    id: str = URL_ID
    kind: SubjectKind | None = Field(  # type: ignore[assignment]
        default=None, json_schema_extra={"readOnly": True},
        description="Taken from the URL; if given, it must equal it.")


class SubscriptionPut(d.SubscriptionIn):
    id: str = URL_ID


def _from_url(body: BaseModel, **url: str) -> Any:
    """The body with the URL's id (and kind); a different one in the body is a 422."""
    problems = [Problem(f"must equal the {field} in the URL ({value!r})", path=field)
                for field, value in url.items() if getattr(body, field) not in ("", None, value)]
    if problems:
        raise ValidationFailed(problems)
    return body.model_copy(update=url)


@routes.put("/users/{user_id}", status_code=204, tags=["directory"])
def put_user(runtime: RuntimeDep, tenant: TenantDep, user_id: PathId, body: UserPut) -> Response:
    _write(runtime, d.put_user, tenant, _from_url(body, id=user_id))
    return Response(status_code=204)


@routes.delete("/users/{user_id}", status_code=204, tags=["directory"])
def delete_user(runtime: RuntimeDep, tenant: TenantDep, user_id: str) -> Response:
    _write(runtime, d.delete_user, tenant, user_id)
    return Response(status_code=204)


def _unit_routes(kind: MemberKind, plural: str) -> None:
    def put(runtime: RuntimeDep, tenant: TenantDep, unit_id: PathId, body: UnitPut) -> Response:
        _write(runtime, d.put_unit, tenant, kind, _from_url(body, id=unit_id))
        return Response(status_code=204)

    def remove(runtime: RuntimeDep, tenant: TenantDep, unit_id: str) -> Response:
        _write(runtime, d.delete_unit, tenant, kind, unit_id)
        return Response(status_code=204)

    routes.put(f"/{plural}/{{unit_id}}", status_code=204, tags=["directory"],
               name=f"put_{kind}")(put)
    routes.delete(f"/{plural}/{{unit_id}}", status_code=204, tags=["directory"],
                  name=f"delete_{kind}")(remove)


_unit_routes(MemberKind.DEPARTMENT, "departments")
_unit_routes(MemberKind.TEAM, "teams")


@routes.put("/templates/{template_id}", status_code=204, tags=["directory"])
def put_template(runtime: RuntimeDep, tenant: TenantDep, template_id: PathId,
                 body: TemplatePut) -> Response:
    _write(runtime, d.put_template, tenant, _from_url(body, id=template_id))
    return Response(status_code=204)


@routes.delete("/templates/{template_id}", status_code=204, tags=["directory"])
def delete_template(runtime: RuntimeDep, tenant: TenantDep, template_id: str) -> Response:
    _write(runtime, d.delete_template, tenant, template_id)
    return Response(status_code=204)


@routes.put("/subjects/{kind}/{subject_id}", status_code=204, tags=["directory"])
def put_subject(runtime: RuntimeDep, tenant: TenantDep, kind: SubjectKind,
                subject_id: PathId, body: SubjectPut) -> Response:
    _write(runtime, d.put_subject, tenant, _from_url(body, id=subject_id, kind=kind))
    return Response(status_code=204)


@routes.delete("/subjects/{kind}/{subject_id}", status_code=204, tags=["directory"])
def delete_subject(runtime: RuntimeDep, tenant: TenantDep, kind: SubjectKind,
                   subject_id: str) -> Response:
    _write(runtime, d.delete_subject, tenant, kind, subject_id)
    return Response(status_code=204)


@routes.put("/subscriptions/{subscription_id}", status_code=204, tags=["directory"])
def put_subscription(runtime: RuntimeDep, tenant: TenantDep, subscription_id: PathId,
                     body: SubscriptionPut) -> Response:
    """An employee signing a code user up for one ticket or video session later (a code
    user signs up inside the creating event: see `signups` in POST /v1/events)."""
    subscription = _from_url(body, id=subscription_id)
    refused = _push_problems(runtime.config.outbound.allow, subscription)
    if refused:
        raise ValidationFailed(refused)
    _write(runtime, d.put_subscription, tenant, subscription)
    return Response(status_code=204)


def _push_problems(allow: list[str], item: BaseModel, prefix: str = "") -> list[Problem]:
    """A code user's push endpoint must be one Herald may send to (router.core.outbound)."""
    push = getattr(item, "push_subscription", None)
    if push is None:
        return []
    return endpoint_problems(allow, push.endpoint, f"{prefix}push_subscription.endpoint")


@routes.delete("/subscriptions/{subscription_id}", status_code=204, tags=["directory"])
def delete_subscription(runtime: RuntimeDep, tenant: TenantDep, subscription_id: str) -> Response:
    _write(runtime, d.delete_subscription, tenant, subscription_id)
    return Response(status_code=204)


@routes.get("/users/{user_id}/settings", response_model=SettingsIn, tags=["settings"])
def get_settings(runtime: RuntimeDep, tenant: TenantDep, user_id: str) -> SettingsIn:
    with runtime.db.session() as s:
        return d.get_settings(s, tenant, user_id)


@routes.put("/users/{user_id}/settings", response_model=SettingsIn, tags=["settings"])
def put_settings(runtime: RuntimeDep, tenant: TenantDep, user_id: str,
                 body: SettingsIn) -> SettingsIn:
    check_settings(runtime, body)
    with runtime.db.session() as s:
        return d.put_settings(s, tenant, user_id, body)


def check_settings(runtime: Runtime, body: SettingsIn) -> None:
    from router.directory.quiet import overlaps
    from router.directory.settings import check_row_keys

    problems = [Problem("not 'all' nor a known event type", path=f"advanced.{k}")
                for k in check_row_keys(body, runtime.engine.ruleset)]
    problems += [Problem(message, path=path) for path, message in overlaps(body.quiet_hours)]
    if problems:
        raise ValidationFailed(problems)


IMPORT_KINDS: dict[str, tuple[type[BaseModel], Any]] = {
    "user": (d.UserIn, d.put_user),
    "department": (d.UnitIn, lambda s, t, x: d.put_unit(s, t, MemberKind.DEPARTMENT, x)),
    "team": (d.UnitIn, lambda s, t, x: d.put_unit(s, t, MemberKind.TEAM, x)),
    "template": (d.TemplateIn, d.put_template),
    "subject": (d.SubjectIn, d.put_subject),
    "subscription": (d.SubscriptionIn, d.put_subscription),
}


class ImportResult(BaseModel):
    imported: dict[str, int] = Field(default_factory=dict)


@routes.post("/directory:import", response_model=ImportResult, tags=["directory"],
             openapi_extra={"requestBody": {"content": {"application/x-ndjson": {
                 "schema": {"type": "string"}}}, "required": True}})
async def import_directory(request: Request, runtime: RuntimeDep,
                           tenant: TenantDep) -> ImportResult:
    """JSONL, one `{"type": "user|department|team|template|subject|subscription",
    "data": {...}}` per line. All or nothing: any bad line refuses the whole import."""
    lines = (await request.body()).decode("utf-8", errors="replace").splitlines()
    parsed, problems = _parse_import(lines, runtime.config.outbound.allow)
    if problems:
        raise ValidationFailed(problems)
    counts: dict[str, int] = {}
    with runtime.db.session() as s:
        for kind, item in parsed:
            IMPORT_KINDS[kind][1](s, tenant, item)
            counts[kind] = counts.get(kind, 0) + 1
            if sum(counts.values()) % 1000 == 0:
                s.flush()
    return ImportResult(imported=counts)


def _parse_import(lines: list[str], allow: list[str]
                  ) -> tuple[list[tuple[str, BaseModel]], list[Problem]]:
    parsed: list[tuple[str, BaseModel]] = []
    problems: list[Problem] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            kind = doc["type"]
            model = IMPORT_KINDS[kind][0]
            item = model.model_validate(doc.get("data"))
            problems += _push_problems(allow, item, f"line {n}: ")
            parsed.append((kind, item))
        except ValidationError as exc:
            problems += problems_from(exc, f"line {n}: ")
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(Problem(f"not a JSON object with a known 'type' "
                                    f"({', '.join(IMPORT_KINDS)}): {exc}", path=f"line {n}"))
    if not parsed and not problems:
        problems.append(Problem("empty import: send one JSON object per line"))
    return parsed, problems
