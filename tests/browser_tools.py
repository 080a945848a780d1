"""Shared helpers for Playwright browser tests: an axe-core accessibility scan (the axe-core
JS ships inside the `axe-playwright-python` package: nothing is fetched at test time) and
the folder for screenshots kept as test artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # gitignored
SERIOUS = ("serious", "critical")


def artifacts() -> Path:
    """tests/artifacts/, created on first use."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def axe_violations(page: Any, impacts: tuple[str, ...] = SERIOUS,
                   context: str | None = None) -> list[str]:
    """Run axe-core on the page (or a CSS-selected part of it; shadow roots included) and
    return one line per violation of the given impacts: rule, impact, help and targets."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context).response
    return [f"{v['id']} ({v['impact']}): {v['help']} -> "
            f"{[n['target'] for n in v['nodes']][:5]}"
            for v in results["violations"] if v.get("impact") in impacts]
