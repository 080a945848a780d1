"""Routing plans per second in one process: the shipped rules plus 200 extra
rules, a 10k-employee directory on PostgreSQL, ~8 receivers per event.

    python -m bench.routing_bench [--events N] [--extra-rules 200] [--employees 10000]

Measures two figures: durable_rules matching alone (assert + retract), and the
whole plan (matching + audience resolution + settings filter) per event.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from router.directory.audience import DirectoryView
from router.routing.events import Event
from router.routing.planner import plan_event, plan_many
from router.ruleset.engine import RuleEngine
from router.ruleset.rulefile import load_ruleset
from router.store import models as m
from router.store.db import Database

ROOT = Path(__file__).resolve().parents[1]
PG = "postgresql://postgres@127.0.0.1:5432/test"


def extra_rules(n: int) -> str:
    """Rules that look like real admin edits: most match rarely, some often."""
    lines = ["rules:"]
    for i in range(n):
        when = random.choice([
            f'{{data.region: {{in: [x{i}, y{i}]}}}}',
            f'{{type: {{prefix: "task."}}, data.priority: {{gte: {i % 10}}}}}',
            f'{{subject.customer_org_id: org{i % 50}, type: ticket.created}}',
            f'{{any: [{{data.vip: true}}, {{data.tag: t{i}}}]}}',
        ])
        lines.append(f"  - {{id: extra-{i}, when: {when}, receivers: [{{role: [role{i % 20}]}}]}}")
    return "\n".join(lines) + "\n"


def build_rules(dest: Path, n_extra: int) -> Path:
    """The shipped rule files plus N extra rules (same seed: same rules every run)."""
    rules = dest / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    for f in (ROOT / "rules").glob("*.yaml"):
        if not f.name.endswith(".test.yaml"):
            shutil.copy(f, rules)
    random.seed(7)
    (rules / "extra.yaml").write_text(extra_rules(n_extra))
    return rules


def directory(db: Database, tenant: str, employees: int, create_tenant: bool = True) -> None:
    """EMPLOYEES employees (roles role0..role19, ~10 per role in user_roles) and a
    template `tpl` whose notification receivers are u0..u5. With create_tenant=False
    the tenant must exist (e.g. made by router.directory.tenants.create, to get an API key)."""
    with db.session() as s:
        if create_tenant:
            s.add(m.Tenant(id=tenant, name="bench", api_key_hash=uuid.uuid4().hex,
                           signing_secret="x"))
            s.flush()
        s.execute(insert(m.User), [
            {"tenant_id": tenant, "id": f"u{i}", "kind": "employee", "name": f"User {i}",
             "email": f"u{i}@bench.example", "roles": [f"role{i % 20}"], "active": True,
             "avatar_url": ""} for i in range(employees)])
        s.execute(insert(m.UserRole), [
            {"tenant_id": tenant, "user_id": f"u{i}", "role": f"role{i % 20}"}
            for i in range(0, employees, 50)])  # ~10 users per role
        s.add(m.Template(tenant_id=tenant, id="tpl", name="t"))
        s.flush()
        s.add(m.TemplateGroup(tenant_id=tenant, template_id="tpl",
                              submodule="notification_receivers", group_id="g", position=0))
        s.flush()
        s.execute(insert(m.GroupMember), [
            {"tenant_id": tenant, "template_id": "tpl", "submodule": "notification_receivers",
             "group_id": "g", "member_kind": "user", "member_id": f"u{i}"} for i in range(6)])


def events(tenant: str, n: int) -> list[Event]:
    return [Event.model_validate({
        "id": f"e{i}", "type": random.choice(["ticket.created", "ticket.status_changed"]),
        "tenant": tenant, "actor": {"id": "cust"},
        "subject": {"kind": "ticket", "id": f"T{i}", "number": f"#{i}", "template_id": "tpl",
                    "creator_id": f"u{100 + i % 500}", "participants": [f"u{900 + i % 300}"]},
        "data": {"priority": i % 10, "region": f"r{i % 300}"}}) for i in range(n)]


def run(n_events: int, n_extra: int, employees: int) -> dict[str, Any]:
    rules_dir = Path(tempfile.mkdtemp())
    engine = RuleEngine(load_ruleset(build_rules(rules_dir, n_extra)))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = Database(PG)
    with admin.engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    db = Database(f"{PG}?options=-csearch_path%3D{schema}")
    try:
        db.migrate()
        print(f"  loading {employees} employees ...", flush=True)
        directory(db, "bench", employees)
        evs = events("bench", n_events)
        docs = [e.as_doc() for e in evs]
        started = time.perf_counter()
        fired = sum(len(engine.match(d)) for d in docs)
        match_s = time.perf_counter() - started
        receivers = 0
        started = time.perf_counter()
        with db.session() as s:
            for e in evs[:500]:
                receivers += len(plan_event(e, DirectoryView(s, "bench"), engine).receivers)
        single_s = (time.perf_counter() - started) / 500
        started = time.perf_counter()
        with db.session() as s:
            for i in range(0, n_events, 100):
                plans = plan_many(evs[i:i + 100], DirectoryView(s, "bench"), engine)
                receivers += sum(len(p[1].receivers) for p in plans if not isinstance(p, Exception))
        plan_s = time.perf_counter() - started
    finally:
        db.dispose()
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
        shutil.rmtree(rules_dir)
    return {"rules": len(engine.ruleset.rules), "events": n_events,
            "rules_fired_per_event": fired / n_events,
            "receivers_per_event": receivers / (n_events + 500),
            "match_per_s": n_events / match_s, "plans_per_s_one_by_one": 1 / single_s,
            "plans_per_s_batches_of_100": n_events / plan_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--extra-rules", type=int, default=200)
    parser.add_argument("--employees", type=int, default=10_000)
    args = parser.parse_args()
    print("routing benchmark: shipped rules + extra rules, one process", flush=True)
    result = run(args.events, args.extra_rules, args.employees)
    for key, value in result.items():
        print(f"  {key:24} {value:,.1f}" if isinstance(value, float) else f"  {key:24} {value}")


if __name__ == "__main__":
    main()
