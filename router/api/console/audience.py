"""Who gets what: event types x rules and selectors x default channels and strategy,
and a subject resolved against the directory (effective channels, and where each
setting comes from)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from router.api.console import words
from router.api.console.base import json_or_page, language, routes
from router.api.console.session import AdminDep
from router.api.deps import RuntimeDep
from router.core.enums import SubjectKind
from router.core.errors import Problem, ValidationFailed
from router.directory.audience import DirectoryView
from router.routing.events import parse_event
from router.routing.planner import plan_event
from router.ruleset.rulefile import RuleSet
from router.ruleset.timing import format_duration
from router.runtime import Runtime
from router.store import models as m

Text = Annotated[str, Query(max_length=200)]


def matrix(ruleset: RuleSet, lang: str) -> list[dict[str, Any]]:
    rows = []
    for etype, spec in ruleset.events.items():
        prefs = ruleset.default_for(etype)
        rows.append({
            "type": etype, "title": spec.title, "subject": str(spec.subject),
            "audiences": [{"rule": a.rule.id, "always": a.always,
                           "when": "" if a.always else words.condition(a.rule.when, lang),
                           "who": [words.selector(sel, lang) for sel in a.rule.receivers],
                           "channels": sorted(a.rule.channels) if a.rule.channels else []}
                          for a in words.audiences(ruleset, etype)],
            "channels": [str(c) for c in prefs.channels], "strategy": str(prefs.strategy),
            "origin": sorted(str(o) for o in prefs.origin), "critical": spec.critical,
            "timing": [x.describe() for x in spec.timing] + [x.describe() for x in spec.folds],
            "ttl": format_duration(spec.ttl_s) if spec.ttl_s else ""})
    return rows


def _subjects(runtime: Runtime, tenant: str) -> list[tuple[str, str, str]]:
    """The tenant's subjects to pick from (newest first would need a time: by id)."""
    with runtime.db.session() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(m.SubjectRow.kind, m.SubjectRow.id, m.SubjectRow.number)
            .where(m.SubjectRow.tenant_id == tenant).order_by(m.SubjectRow.kind, m.SubjectRow.id)
            .limit(500))]


def resolve(runtime: Runtime, tenant: str, event_type: str, kind: str, subject_id: str
            ) -> dict[str, Any]:
    """Plan an event of this type on this subject against the directory (nothing stored)."""
    problems = []
    if event_type not in runtime.engine.ruleset.events:
        problems.append(Problem("not an event type of the rule set in force", path="type"))
    if kind not in {k.value for k in SubjectKind}:
        problems.append(Problem("not a subject kind", path="subject_kind"))
    if not subject_id.strip():
        problems.append(Problem("give a subject id", path="subject_id"))
    if problems:
        raise ValidationFailed(problems)
    with runtime.db.session() as s:
        stored = s.get(m.SubjectRow, (tenant, kind, subject_id))
        event = parse_event({"id": "console-resolve", "type": event_type, "tenant": tenant,
                             "subject": {"kind": kind, "id": subject_id,
                                         "number": stored.number if stored else subject_id}},
                            runtime.engine.ruleset.events)
        plan = plan_event(event, DirectoryView(s, tenant), runtime.engine).as_dict()
        plan["subject_known"] = stored is not None
        return plan


@routes.get("/audience")
def audience(request: Request, runtime: RuntimeDep, admin: AdminDep, type: Text = "",
             subject_kind: Text = "", subject_id: Text = "") -> Response:
    ruleset = runtime.engine.ruleset
    rows = matrix(ruleset, language(request))
    plan = resolve(runtime, admin.tenant, type, subject_kind, subject_id) if (
        type or subject_id) else None
    data = {"rules_version": runtime.engine.version, "matrix": rows, "resolved": plan}
    return json_or_page(request, data, "audience.html", admin, matrix=rows, plan=plan,
                        types=list(ruleset.events), kinds=[k.value for k in SubjectKind],
                        subjects=_subjects(runtime, admin.tenant), chosen={
                            "type": type, "subject_kind": subject_kind,
                            "subject_id": subject_id}, version=runtime.engine.version)
