"""The `herald` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from router.core.errors import HeraldError

Handler = Callable[[argparse.Namespace], int]


def _print_problems(problems: list[Any]) -> None:
    for problem in problems:
        print(problem.located(), file=sys.stderr)


def cmd_rules_check(args: argparse.Namespace) -> int:
    from router.ruleset.ruletools import check

    ruleset, problems = check(args.path)
    if problems:
        _print_problems(problems)
        print(f"✗ {len(problems)} problem(s); the rule set was not changed.", file=sys.stderr)
        return 1
    assert ruleset is not None
    print(f"✓ {args.path}: {len(ruleset.rules)} rules, {len(ruleset.events)} event types, "
          f"{len(ruleset.files)} file(s) OK")
    return 0


def cmd_rules_explain(args: argparse.Namespace) -> int:
    """With --rules (or a --directory fixture alone) the files; else the deployed version
    in force, or the one asked for with --version."""
    from router.cli.explain import explain_in, render_plan, sandbox
    from router.ruleset.engine import RuleEngine
    from router.ruleset.ruletools import check

    files = bool(args.rules) or (bool(args.directory) and args.version is None)
    runtime: Any = None if files and args.directory else _runtime()
    if files:
        ruleset, problems = check(args.rules or "rules")
        if ruleset is None:
            _print_problems(problems)
            return 1
        engine = RuleEngine(ruleset)
    else:
        engine = runtime.rules.engine_for(args.version)
    doc = json.loads(Path(args.event).read_text(encoding="utf-8"))
    if args.directory:
        fixture = yaml.safe_load(Path(args.directory).read_text(encoding="utf-8")) or {}
        with sandbox(fixture) as (db, tenant):
            plan = explain_in(db, tenant, engine, doc)
    else:
        plan = explain_in(runtime.db, doc.get("tenant", ""), engine, doc)
    print(json.dumps(plan.as_dict(), indent=2) if args.json else render_plan(plan))
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from router.cli.explain import run_cases

    results, uncovered, problems = run_cases(args.path, args.cases)
    if problems:
        _print_problems(problems)
        return 1
    for r in results:
        print(f"{'PASS' if r.passed else 'FAIL'}  {Path(r.file).name}: {r.name}")
        if r.diff:
            print("\n".join("      " + line for line in r.diff.splitlines()))
    failed = sum(not r.passed for r in results)
    for rule_id in uncovered:
        print(f"FAIL  rule {rule_id!r} is not covered by any test case")
    print(f"{len(results) - failed} passed, {failed + len(uncovered)} failed")
    return 1 if failed or uncovered or not results else 0


def _runtime() -> Any:
    from router.runtime import Runtime

    return Runtime.from_config()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="herald", description="Herald notification router")
    sub = parser.add_subparsers(dest="command", required=True)
    rules = sub.add_parser("rules", help="check, explain and test rule files").add_subparsers(
        dest="rules_command", required=True)
    p = rules.add_parser("check", help="validate rule files (exit 1 on any problem)")
    p.add_argument("path", nargs="?", default="rules")
    p.set_defaults(func=cmd_rules_check)
    p = rules.add_parser("explain", help="show how an event would be routed, and why")
    p.add_argument("event", help="event JSON file")
    p.add_argument("--directory", help="directory fixture YAML (default: the configured database)")
    p.add_argument("--rules", help="rule files to explain with instead of a deployed version")
    p.add_argument("--version", type=int, help="a deployed version (default: the one in force)")
    p.add_argument("--json", action="store_true", help="machine-readable plan")
    p.set_defaults(func=cmd_rules_explain)
    p = rules.add_parser("test", help="run the rule test cases (*.test.yaml)")
    p.add_argument("path", nargs="?", default="rules")
    p.add_argument("--cases", help="test case file or folder (default: PATH)")
    p.set_defaults(func=cmd_rules_test)
    from router.cli import console as cli_console
    from router.cli import rules as cli_rules
    from router.cli import service as cli_service

    cli_rules.register(rules)
    cli_service.register(sub)
    cli_console.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from router.core.metrics import prepare_multiprocess

    prepare_multiprocess()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HeraldError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
