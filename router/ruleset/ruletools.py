"""`herald rules check`: load a rule folder and report every problem with its place."""

from __future__ import annotations

from pathlib import Path

from router.core.errors import Problem, RuleFileError
from router.ruleset.rulefile import RuleSet, load_ruleset


def check(path: str | Path) -> tuple[RuleSet | None, list[Problem]]:
    try:
        return load_ruleset(path), []
    except RuleFileError as exc:
        return None, exc.problems
