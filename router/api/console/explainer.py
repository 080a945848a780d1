"""Explain: paste or build an event and see who would receive it, why, what was left
out by which setting, and when each channel goes out; against the version in force or
another one. Nothing is published."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response

from router.api.console import words
from router.api.console.base import json_or_page, language, routes
from router.api.console.session import Admin, AdminDep, check_csrf, form
from router.api.deps import RuntimeDep
from router.core.errors import Problem, ValidationFailed
from router.directory.audience import DirectoryView
from router.routing.events import parse_event
from router.routing.pipeline import store_signups
from router.routing.planner import plan_event
from router.ruleset import ruleversions as rv
from router.runtime import Runtime

Text = Annotated[str, Query(max_length=300)]


def built(event_type: str, kind: str, subject_id: str, actor: str, title: str) -> dict[str, Any]:
    """An event document from the builder's few fields."""
    doc: dict[str, Any] = {"id": "console-explain", "type": event_type,
                           "subject": {"kind": kind or event_type.split(".")[0],
                                       "id": subject_id or "S-1",
                                       "number": subject_id or "S-1"},
                           "data": {"title": title} if title else {}}
    if actor:
        doc["actor"] = {"id": actor}
    return doc


def _versions(runtime: Runtime) -> list[int]:
    with runtime.db.session() as s:
        return [row.version for row in rv.history(s, 100)]


def explain_doc(runtime: Runtime, tenant: str, text: str, version: int | None) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed([Problem(f"not JSON: {exc}", path="event")]) from None
    if not isinstance(doc, dict):
        raise ValidationFailed([Problem("an event is a JSON object", path="event")])
    if doc.get("tenant") not in (None, "", tenant):
        raise ValidationFailed([Problem("another tenant's event: leave tenant out",
                                        path="event.tenant")])
    engine = runtime.rules.engine_for(version)
    event = parse_event({**doc, "tenant": tenant}, engine.ruleset.events, "event.")
    with runtime.db.sessions() as s:
        store_signups(s, tenant, event)  # rolled back below, like POST /v1/events:explain
        plan = plan_event(event, DirectoryView(s, tenant), engine)
        s.rollback()
    return plan.as_dict()


def _page(request: Request, runtime: Runtime, admin: Admin, text: str,
          plan: dict[str, Any] | None, version: int | None, chosen: dict[str, str],
          problems: list[Problem] | None = None) -> Response:
    moments = words.timeline(plan, language(request)) if plan else []
    data = {"plan": plan, "timeline": [m.__dict__ for m in moments],
            "problems": [p.as_dict() for p in problems or []]}
    return json_or_page(request, data, "explain.html", admin, status=422 if problems else 200,
                        text=text, plan=plan, timeline=moments, versions=_versions(runtime),
                        version=version, types=list(runtime.engine.ruleset.events),
                        chosen=chosen, problems=problems or [])


@routes.get("/explain")
def explain_form(request: Request, runtime: RuntimeDep, admin: AdminDep, type: Text = "",
                 subject_kind: Text = "", subject_id: Text = "", actor_id: Text = "",
                 title: Text = "") -> Response:
    event_type = type or next(iter(runtime.engine.ruleset.events), "")
    doc = built(event_type, subject_kind, subject_id, actor_id, title)
    chosen = {"type": event_type, "subject_kind": subject_kind, "subject_id": subject_id,
              "actor_id": actor_id, "title": title}
    return _page(request, runtime, admin, json.dumps(doc, indent=2, ensure_ascii=False), None,
                 None, chosen)


@routes.post("/explain")
async def explain(request: Request, runtime: RuntimeDep, admin: AdminDep) -> Response:
    fields = await form(request)
    check_csrf(admin, fields)
    text = (fields.get("event") or [""])[0]
    raw_version = (fields.get("version") or [""])[0]
    if raw_version and not raw_version.isdigit():
        raise ValidationFailed([Problem("a version number", path="version")])
    version = int(raw_version) if raw_version else None
    try:
        plan = explain_doc(runtime, admin.tenant, text, version)
    except ValidationFailed as exc:
        return _page(request, runtime, admin, text, None, version, {}, exc.problems)
    return _page(request, runtime, admin, text, plan, version, {})
