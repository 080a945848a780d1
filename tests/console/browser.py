"""Playwright helpers for the console: an axe-core scan (axe-playwright-python ships
axe-core's script: nothing is fetched) and screenshots kept as test artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import ROOT

ARTIFACTS = Path(ROOT) / "tests" / "artifacts"  # gitignored
BLOCKING = ("serious", "critical")


def axe_violations(page: Any) -> list[str]:
    """The serious and critical axe-core violations of the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{', '.join(str(n['target']) for n in v['nodes'][:3])}"
            for v in results.response["violations"] if v.get("impact") in BLOCKING]


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
