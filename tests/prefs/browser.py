"""Driving <herald-preferences> in headless Debian Chromium (tests/inbox/browser.py starts
it) and scanning it with axe-core, whose script ships inside the axe-playwright-python
package: nothing is downloaded at test time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.conftest import ROOT

ARTIFACTS = Path(ROOT) / "tests" / "artifacts"  # gitignored; screenshots land here
SEVERE = ("serious", "critical")


def axe_violations(page: Page, scope: str = "herald-preferences") -> list[dict[str, Any]]:
    """Every axe-core violation inside ``scope`` (its shadow tree included)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=scope, options={"resultTypes": ["violations"]})
    violations: list[dict[str, Any]] = results.response["violations"]
    return violations


def described(violations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} at "
                     f"{[n['target'] for n in v['nodes']][:3]}" for v in violations)


def open_preferences(page: Page, url: str, token: str, lang: str | None = None) -> Locator:
    """The demo page with the component signed in; returns the loaded component."""
    query = f"?token={token}&no_navigate=1" + (f"&lang={lang}" if lang else "")
    page.goto(f"{url}/demo{query}")
    component = page.locator("herald-preferences")
    expect(component.locator("[data-testid=preferences], [data-testid=subscription]")).to_be_visible()
    return component


def row(component: Locator, key: str) -> Locator:
    return component.locator(f'tr[data-key="{key}"]')


def channel_order(component: Locator, key: str) -> list[str]:
    """The channels a row lists as on, in their order."""
    items = row(component, key).locator("li.chan:not(.off)")
    return [items.nth(i).get_attribute("data-channel") or "" for i in range(items.count())]


def photograph(page: Page, component: Locator, name: str) -> None:
    """The whole component, the viewport stretched to the page so nothing sticky overlaps."""
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": page.viewport_size["width"] if page.viewport_size else 1280,
                            "height": height})
    component.screenshot(path=str(ARTIFACTS / name))


def save(component: Locator, expected: str) -> None:
    component.get_by_test_id("save").click()
    expect(component.get_by_test_id("status")).to_have_text(expected)
