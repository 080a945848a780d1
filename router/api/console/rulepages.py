"""Rules: the version in force in plain words, its history, a diff between any two
versions, and trying a rule file (the problems a deploy would refuse, at file:line:col)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response

from router.api.console import words
from router.api.console.base import json_or_page, language, routes
from router.api.console.session import AdminDep, check_csrf, form
from router.api.deps import RuntimeDep
from router.core.enums import RulesChange
from router.core.errors import NotFound, Problem, RuleFileError
from router.core.inputs import INT_MAX
from router.ruleset import ruleversions as rv
from router.ruleset.rulefile import RuleSet
from router.ruleset.yamlpos import MAX_FILE_BYTES
from router.store import models as m

Version = Annotated[int | None, Query(ge=1, le=INT_MAX)]


def _rules_in_words(ruleset: RuleSet, lang: str) -> list[dict[str, Any]]:
    return [{"id": r.id, "description": r.description, "when": words.condition(r.when, lang),
             "who": [words.selector(sel, lang) for sel in r.receivers],
             "channels": sorted(r.channels) if r.channels else [],
             "excludes": sorted(r.excludes), "where": f"{r.file}:{r.line}" if r.file else ""}
            for r in ruleset.rules]


@routes.get("/rules")
def rules(request: Request, runtime: RuntimeDep, admin: AdminDep,
          version: Version = None) -> Response:
    with runtime.db.session() as s:
        history = rv.history(s, 100)
        if not history:
            raise NotFound("no rule set is deployed yet (herald migrate or herald rules deploy)")
        row = rv.get(s, version) if version else history[0]
        shown = rv.summary(row)
        listing = [rv.summary(h) for h in history]
        files = [f["name"] for f in history[0].files]
        ruleset = rv.RuleSource.from_row(row).ruleset()
    in_words = _rules_in_words(ruleset, language(request))
    data = {"in_force": listing[0]["version"], "shown": shown, "rules": in_words,
            "history": listing}
    return json_or_page(request, data, "rules.html", admin, shown=shown, rules=in_words,
                        history=listing, in_force=listing[0]["version"], files=files)


@routes.get("/rules/diff")
def diff(request: Request, runtime: RuntimeDep, admin: AdminDep,
         a: Annotated[int, Query(ge=1, le=INT_MAX)], b: Annotated[int, Query(ge=1, le=INT_MAX)]
         ) -> Response:
    with runtime.db.session() as s:
        text = rv.diff(rv.get(s, a), rv.get(s, b))
    return json_or_page(request, {"a": a, "b": b, "diff": text}, "diff.html", admin, a=a, b=b,
                        lines=text.splitlines())


def _candidate(current: m.RuleVersion, name: str, text: str) -> rv.RuleSource:
    files = {f["name"]: f["text"] for f in current.files}
    files[name] = text
    return rv.RuleSource(tuple(sorted(files.items())))


def _name_problems(name: str, text: str) -> list[Problem]:
    problems = []
    if not name.endswith(".yaml") or "/" in name or "\\" in name or name.endswith(".test.yaml"):
        problems.append(Problem("a rule file's name ends in .yaml (not .test.yaml) and "
                                "names no folder", path="name"))
    if len(text.encode()) > MAX_FILE_BYTES:
        problems.append(Problem(f"a rule file holds at most {MAX_FILE_BYTES} bytes: split it "
                                "into several files", path="text"))
    return problems


@routes.post("/rules/check")
async def check(request: Request, runtime: RuntimeDep, admin: AdminDep) -> Response:
    """Check a pasted rule file with the other files of the version in force, like a
    deploy would; nothing is stored."""
    fields = await form(request)
    check_csrf(admin, fields)
    name = (fields.get("name") or [""])[0].strip()
    text = (fields.get("text") or [""])[0].replace("\r\n", "\n")
    with runtime.db.session() as s:
        current = rv.active(s)
        if current is None:
            raise NotFound("no rule set is deployed yet")
        problems = _name_problems(name, text)
        lines: list[str] = []
        count = 0
        if not problems:
            source = _candidate(current, name, text)
            try:
                count = len(source.ruleset().rules)
            except RuleFileError as exc:
                problems = exc.problems
            else:
                proposed = m.RuleVersion(version=current.version + 1, files=source.as_json(),
                                         change=RulesChange.DEPLOY)
                lines = rv.diff(current, proposed).splitlines()
    data = {"problems": [p.as_dict() | {"located": p.located()} for p in problems],
            "rules": count, "diff": "\n".join(lines)}
    return json_or_page(request, data, "check.html", admin, name=name, text=text,
                        problems=problems, count=count, lines=lines)
