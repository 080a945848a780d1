"""`herald rules deploy | history | diff | rollback`: rule set versions (DESIGN §9)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from router.core.config import get_config
from router.core.enums import RulesChange
from router.core.errors import RuleFileError
from router.ruleset import ruleversions as rv
from router.store.db import Database

FOLLOW_NOTE = "every API replica and worker follows within ~1 s"


def _database() -> Database:
    return Database(get_config().database_url)


def _who() -> str:
    return os.environ.get("USER", "")


def _in_force(db: Database) -> str:
    with db.session() as s:
        version = rv.active_version(s)
    return f"version {version} stays in force" if version else "nothing was deployed"


def cmd_deploy(args: argparse.Namespace) -> int:
    path = args.path or get_config().rules_path
    db = _database()
    try:
        source, ruleset = rv.RuleSource.from_path(path)
    except RuleFileError as exc:
        for problem in exc.problems:
            print(problem.located(), file=sys.stderr)
        print(f"✗ {len(exc.problems)} problem(s); {_in_force(db)}.", file=sys.stderr)
        return 1
    with db.session() as s:
        done = rv.deploy(s, source, RulesChange.DEPLOY, message=args.message, who=_who())
    if not done.stored:
        print(f"= version {done.version} in force already holds these rules; nothing deployed")
        return 0
    print(f"✓ version {done.version} deployed and in force: {len(ruleset.rules)} rules, "
          f"{len(source.files)} file(s), sha256 {done.content_hash[:12]}; {FOLLOW_NOTE}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with _database().session() as s:
        rows = rv.history(s, args.limit)
    if args.json:
        print(json.dumps([rv.summary(r) for r in rows], indent=2))
        return 0
    for i, row in enumerate(rows):
        origin = f" of {row.source_version}" if row.source_version else ""
        print(f"{row.version:>5}  {row.deployed_at:%Y-%m-%d %H:%M:%S}  {row.change}{origin}  "
              f"{row.deployed_by or '-'}  {row.content_hash[:12]}  {row.message}"
              f"{'  (in force)' if i == 0 else ''}")
    if not rows:
        print("no rule set deployed yet (herald migrate or herald rules deploy)")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    with _database().session() as s:
        text = rv.diff(rv.get(s, args.a), rv.get(s, args.b))
    print(text or f"versions {args.a} and {args.b} hold the same rules", end="" if text else "\n")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    with _database().session() as s:
        done = rv.rollback(s, args.version, message=args.message, who=_who())
    if not done.stored:
        print(f"= version {done.version} in force already holds the rules of version "
              f"{args.version}; nothing changed")
        return 0
    print(f"✓ version {done.version} (the rules of version {args.version}) is in force; "
          f"{FOLLOW_NOTE}")
    return 0


def register(rules: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = rules.add_parser("deploy", help="check the files and make them the version in force")
    p.add_argument("path", nargs="?", help="rule files (default: rules_path)")
    p.add_argument("-m", "--message", default="", help="what changed and why")
    p.set_defaults(func=cmd_deploy)
    p = rules.add_parser("history", help="deployed versions, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)
    p = rules.add_parser("diff", help="unified diff per file between two versions")
    p.add_argument("a", type=int)
    p.add_argument("b", type=int)
    p.set_defaults(func=cmd_diff)
    p = rules.add_parser("rollback", help="put an earlier version's rules in force again")
    p.add_argument("version", type=int)
    p.add_argument("-m", "--message", default="")
    p.set_defaults(func=cmd_rollback)
