"""Admin tooling behind `herald rules explain | test`: plan events against a sandbox
directory loaded from a fixture (`herald rules check` is ``router.ruleset.ruletools``)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from router.cli.fixtures import load_fixture
from router.core.errors import HeraldError, Problem
from router.core.security import hash_secret
from router.directory.audience import DirectoryView
from router.routing.events import parse_event
from router.routing.planner import RoutingPlan, plan_event
from router.ruleset.engine import RuleEngine
from router.ruleset.ruletools import check
from router.ruleset.yamlpos import load_located_file
from router.store.db import Database
from router.store.models import Tenant

SANDBOX_TENANT = "sandbox"


@contextmanager
def sandbox(fixture: dict[str, Any] | None) -> Iterator[tuple[Database, str]]:
    """An in-memory SQLite directory holding one tenant loaded from a fixture."""
    db = Database("sqlite://")
    db.migrate()
    with db.session() as s:
        s.add(Tenant(id=SANDBOX_TENANT, name="sandbox", api_key_hash=hash_secret("sandbox"),
                     signing_secret="sandbox"))
        s.flush()
        load_fixture(s, SANDBOX_TENANT, fixture or {})
    try:
        yield db, SANDBOX_TENANT
    finally:
        db.dispose()


def explain_in(db: Database, tenant: str, engine: RuleEngine, doc: dict[str, Any]) -> RoutingPlan:
    event = parse_event({**doc, "tenant": tenant}, engine.ruleset.events)
    with db.session() as s:
        return plan_event(event, DirectoryView(s, tenant), engine)


def render_plan(plan: RoutingPlan) -> str:
    """A routing plan in words a non-programmer can follow."""
    rules = (f"rule set version {plan.rules_version}" if plan.rules_version is not None
             else "rule files (not deployed)")
    out = [f"Event {plan.event_type} (id {plan.event_id}), routed with {rules}", ""]
    out.append(f"Matched rules ({len(plan.matched_rules)}):")
    out += [f"  ✓ {r['id']}: {r['description']}" for r in plan.matched_rules] or ["  (none)"]
    out += ["", f"Receivers ({len(plan.receivers)}):"]
    for r in plan.receivers:
        name = f"{r.name} " if r.name else ""
        out.append(f"  • {name}({r.kind} {r.id}), language {r.language}")
        out.append(f"      channels: {', '.join(r.channels)}; strategy: {r.strategy}"
                   f"  (from {r.prefs_source})")
        why = "; ".join(f"{x.rule} ({x.selector})" for x in r.reasons)
        out.append(f"      because: {why}")
        if r.quiet:
            out.append(f"      {r.quiet}")
        if r.cadence:
            out.append(f"      email waits for their digest at {r.cadence.label}")
    if not plan.receivers:
        out.append("  (nobody)")
    if plan.nobody:
        out += ["", f"Selectors that found nobody ({len(plan.nobody)}):"]
        out += [f"  ∅ {n.rule} ({n.selector}): {n.reason}" for n in plan.nobody]
    out += ["", f"Dropped ({len(plan.dropped)}):"]
    for d in plan.dropped:
        what = f"{d.kind} {d.id}" + (f", channel {d.channel}" if d.channel else "")
        out.append(f"  ✗ {what}: {d.reason}  [setting: {d.setting}]")
    if not plan.dropped:
        out.append("  (nothing)")
    if plan.timing or plan.folds:
        out += ["", "Timing:"] + [f"  ⏱ {x.describe()}" for x in plan.timing] + [
            f"  ⏱ {x.describe()}" for x in plan.folds]
    if plan.notes:
        out += ["", "Notes:"] + [f"  - {n}" for n in plan.notes]
    return "\n".join(out)


def plan_summary(plan: RoutingPlan) -> dict[str, Any]:
    """The comparable part of a plan: receivers with channels and strategy."""
    return {
        r.id: {"kind": str(r.kind), "channels": [str(c) for c in r.channels],
               "strategy": str(r.strategy)}
        for r in sorted(plan.receivers, key=lambda r: r.id)
    }


@dataclass
class CaseResult:
    file: str
    name: str
    passed: bool
    diff: str = ""
    rules: list[str] = field(default_factory=list)


def test_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("*.test.yaml"))


def run_cases(rules_path: str | Path, cases_path: str | Path | None = None
              ) -> tuple[list[CaseResult], list[str], list[Problem]]:
    """Run rule test cases; return results, uncovered rule ids and file problems."""
    ruleset, problems = check(rules_path)
    if ruleset is None:
        return [], [], problems
    engine = RuleEngine(ruleset)
    results: list[CaseResult] = []
    for file in test_files(Path(cases_path or rules_path)):
        src, syntax = load_located_file(file)
        if src is None or syntax:
            problems += syntax
            continue
        results += _run_file(str(file), src.data or {}, engine)
    fired = {rule for r in results for rule in r.rules}
    uncovered = [r.id for r in ruleset.rules if r.id not in fired]
    return results, uncovered, problems


def _run_file(file: str, data: dict[str, Any], engine: RuleEngine) -> list[CaseResult]:
    results = []
    for i, case in enumerate(data.get("cases") or []):
        name = case.get("name", f"case {i + 1}")
        fixture = {**(data.get("directory") or {}), **(case.get("directory") or {})}
        try:
            with sandbox(fixture) as (db, tenant):
                plan = explain_in(db, tenant, engine, case["event"])
        except (HeraldError, KeyError) as exc:
            results.append(CaseResult(file, name, False, f"cannot run: {exc}"))
            continue
        results.append(_compare(file, name, case.get("expect") or {}, plan))
    return results


def _compare(file: str, name: str, expect: dict[str, Any], plan: RoutingPlan) -> CaseResult:
    fired = [r["id"] for r in plan.matched_rules]
    actual: dict[str, Any] = {"receivers": _normal(plan_summary(plan))}
    wanted: dict[str, Any] = {"receivers": _normal(_expected_receivers(expect, plan))}
    if "rules" in expect:
        actual["rules"], wanted["rules"] = fired, expect["rules"]
    if "timing" in expect:  # e.g. ["email escalated after 10m unless read"]
        actual["timing"] = [x.describe() for x in plan.timing] + [
            x.describe() for x in plan.folds]
        wanted["timing"] = expect["timing"]
    if actual == wanted:
        return CaseResult(file, name, True, rules=fired)
    diff = "\n".join(difflib.unified_diff(
        yaml.safe_dump(wanted, sort_keys=True).splitlines(),
        yaml.safe_dump(actual, sort_keys=True).splitlines(),
        "expected", "actual", lineterm=""))
    return CaseResult(file, name, False, diff, fired)


def _expected_receivers(expect: dict[str, Any], plan: RoutingPlan) -> dict[str, Any]:
    """Expected receivers; omitted kind/strategy default to what the plan says."""
    actual = plan_summary(plan)
    out = {}
    for rid, spec in (expect.get("receivers") or {}).items():
        spec = spec or {}
        got = actual.get(rid, {})
        out[rid] = {"kind": spec.get("kind", got.get("kind", "employee")),
                    "channels": spec.get("channels", got.get("channels", [])),
                    "strategy": spec.get("strategy", got.get("strategy", "all"))}
    return out


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))
