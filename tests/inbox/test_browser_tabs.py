"""Two tabs of one receiver in real headless Chromium, each on its own API replica of a
production-shaped deployment (PostgreSQL, Redis, two `herald serve`, one `herald worker`):
a read in one tab un-bolds the item and lowers the badge in the other, live."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import ROOT
from tests.harness import Client, Herald
from tests.inbox import Inbox, event, publish, seed_people, start, user_token
from tests.inbox.browser import chromium, png, require_chromium, wait_for, watch_errors

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = Path(ROOT) / "artifacts"  # gitignored
FOLLOW_S = 5.0  # the other tab follows a read within this, or the test fails
TOAST_GONE_S = 1.0  # after the badge followed; a toast left alone lives 6 s


@dataclass
class Tab:
    """One browser tab on the demo page: its replica, frames and errors."""

    name: str
    page: Page
    replica: str
    frames: list[dict[str, Any]]
    sockets: list[str]
    errors: list[str]

    def badge(self) -> Locator:
        return self.page.get_by_test_id("unread-count")

    def bell(self) -> Locator:
        return self.page.get_by_test_id("bell")

    def item(self, item_id: int) -> Locator:
        return self.page.get_by_test_id("drawer").locator(
            f'[data-testid="item"][data-id="{item_id}"]')

    def toast(self, item_id: int) -> Locator:
        return self.page.get_by_test_id("toast").locator(
            f'[data-testid="toast-item"][data-id="{item_id}"]')

    def unread_frames(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "unread"]


@pytest.fixture(scope="module")
def executable() -> str:
    return require_chromium()  # first: no deployment is started for a skipped test


@pytest.fixture(scope="module")
def replicas(executable, tmp_path_factory, pg) -> Iterator[tuple[Herald, str, str]]:
    """(deployment, url of replica A, url of replica B): two APIs and one worker."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    herald = Herald(tmp_path_factory.mktemp("tabs"), smtp={"port": 1})
    try:
        [second] = start(herald, replicas=1)
        yield herald, herald.url, second
    finally:
        herald.stop()


@pytest.fixture
def alice(replicas, new_tenant_key) -> Iterator[tuple[Client, str]]:
    """(service client, alice's token) with an empty feed."""
    herald, _, _ = replicas
    tenant_id, key, secret = new_tenant_key()
    with Client(herald.url, key) as client:
        seed_people(client)
        yield client, user_token(secret, tenant_id, "alice")


def test_a_read_in_one_tab_is_followed_by_the_other_tab_on_another_replica(
        executable, replicas, alice):
    _, url_a, url_b = replicas
    client, token = alice
    with chromium(executable) as browser:
        tab_a = _open_tab(browser, "A", url_a, token)
        tab_b = _open_tab(browser, "B", url_b, token)
        for tab in (tab_a, tab_b):
            _shows_nothing(tab)
        _each_tab_streams_from_its_own_replica(tab_a, tab_b)

        [first] = _publish(client, url_a, token, "T-1")
        for tab in (tab_a, tab_b):
            _shows_unread(tab, [first], count=1)
        _clicking_in_one_tab_reads_in_the_other(tab_a, tab_b, first)

        more = _publish(client, url_a, token, "T-2", "T-3")
        for tab in (tab_a, tab_b):
            _shows_unread(tab, more, count=2)
            _screenshot(tab, "unread")
        _mark_all_read_in_one_tab_reads_in_the_other(tab_b, tab_a, [first, *more])

        for tab in (tab_a, tab_b):
            _screenshot(tab, "read")
            assert tab.page.evaluate("window.__notReloaded") is True, f"tab {tab.name} reloaded"
            assert tab.errors == [], f"tab {tab.name}: {tab.errors}"
    with Inbox(url_a, token) as inbox:
        assert inbox.unread() == 0


def _open_tab(browser: Any, name: str, url: str, token: str) -> Tab:
    """A browser context of its own (as another window or device would be)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.route("https://avatars.herald.test/**",
                  lambda route: route.fulfill(body=png(), content_type="image/png"))
    page = context.new_page()
    tab = Tab(name, page, url, [], [], watch_errors(page))
    page.on("websocket", lambda ws: _watch_socket(tab, ws))
    page.goto(f"{url}/demo?token={token}&no_navigate=1&lang=en")
    page.evaluate("window.__notReloaded = true")  # a reload would drop it
    wait_for(page, lambda: any(f["type"] == "hello" for f in tab.frames), f"tab {name}'s hello")
    tab.bell().click()
    return tab


def _shows_nothing(tab: Tab) -> None:
    expect(tab.badge()).to_be_hidden(timeout=FOLLOW_S * 1000)
    expect(tab.bell()).to_have_accessible_name("Notifications")
    expect(tab.page.get_by_test_id("drawer").get_by_test_id("status")).to_have_text(
        re.compile("No notifications"))


def _screenshot(tab: Tab, state: str) -> None:
    tab.page.screenshot(path=str(ARTIFACTS / f"inbox-tab-{tab.name.lower()}-{state}.png"))


def _watch_socket(tab: Tab, ws: Any) -> None:
    tab.sockets.append(ws.url)
    ws.on("framereceived", lambda payload: tab.frames.append(json.loads(payload)))


def _each_tab_streams_from_its_own_replica(*tabs: Tab) -> None:
    for tab in tabs:
        [socket] = tab.sockets
        assert urlsplit(socket).port == urlsplit(tab.replica).port, (tab.name, socket)
    assert len({urlsplit(tab.replica).port for tab in tabs}) == len(tabs)


def _publish(client: Client, url: str, token: str, *subject_ids: str) -> list[int]:
    """One event per subject, in one batch (their toasts arrive together); the item ids."""
    publish(client, *(event(subject_id) for subject_id in subject_ids))
    with Inbox(url, token) as inbox:
        ids = {i["subject"]["id"]: i["id"] for i in inbox.items()}
    return [ids[subject_id] for subject_id in subject_ids]


def _shows_unread(tab: Tab, item_ids: list[int], count: int) -> None:
    """The new items arrived live: a toast each, bold in the drawer with the unread dot,
    and the badge counts them."""
    for item_id in item_ids:  # first: a toast left alone lives 6 s
        expect(tab.toast(item_id)).to_be_visible()
    expect(tab.badge()).to_have_text(str(count))
    expect(tab.bell()).to_have_accessible_name(f"Notifications, {count} unread")
    for item_id in item_ids:
        item = tab.item(item_id)
        expect(item).to_have_attribute("data-unread", "true")
        expect(item.get_by_test_id("title")).to_have_css("font-weight", "600")
        expect(item.get_by_test_id("unread-dot")).to_have_accessible_name("Unread")
        expect(item).to_have_accessible_name(re.compile(r"\bUnread$"))


def _shows_read(tab: Tab, item_ids: list[int]) -> None:
    """No badge, the items plain without the dot, and no toast still announcing them."""
    expect(tab.badge()).to_be_hidden(timeout=FOLLOW_S * 1000)
    expect(tab.badge()).to_have_attribute("data-count", "0")
    expect(tab.bell()).to_have_accessible_name("Notifications")
    for item_id in item_ids:
        expect(tab.toast(item_id)).to_have_count(0, timeout=TOAST_GONE_S * 1000)
        item = tab.item(item_id)
        expect(item).to_have_attribute("data-unread", "false")
        expect(item.get_by_test_id("title")).to_have_css("font-weight", "500")
        expect(item.get_by_test_id("unread-dot")).to_have_count(0)
        expect(item).not_to_have_accessible_name(re.compile(r"\bUnread\b"))
    expect(tab.page.get_by_test_id("read-all")).to_be_disabled()


def _clicking_in_one_tab_reads_in_the_other(reader: Tab, other: Tab, item_id: int) -> None:
    clicked = time.monotonic()
    reader.item(item_id).click()
    _shows_read(other, [item_id])
    print(f"\nread in tab {reader.name} -> tab {other.name} un-bolded: "
          f"{(time.monotonic() - clicked) * 1000:.0f} ms")
    _shows_read(reader, [item_id])
    assert {"type": "unread", "unread": 0, "read": [item_id]} in other.unread_frames()


def _mark_all_read_in_one_tab_reads_in_the_other(reader: Tab, other: Tab,
                                                 item_ids: list[int]) -> None:
    clicked = time.monotonic()
    reader.page.get_by_test_id("read-all").click()
    _shows_read(other, item_ids)
    print(f"read-all in tab {reader.name} -> tab {other.name} un-bolded: "
          f"{(time.monotonic() - clicked) * 1000:.0f} ms")
    _shows_read(reader, item_ids)
    assert any("read_up_to_seq" in f for f in other.unread_frames())


def test_clearing_a_codes_notifications_empties_its_code_users_open_tab(
        executable, replicas, new_tenant_key, pg):
    herald, _, url_b = replicas
    tenant_id, key, _ = new_tenant_key()
    with Client(herald.url, key) as client, chromium(executable) as browser:
        seed_people(client)
        token = _code_user(client, pg, tenant_id, "C-9", "T-9")
        [item_id] = _publish(client, url_b, token, "T-9")  # code users get no live items
        tab = _open_tab(browser, "code-user", url_b, token)
        expect(tab.badge()).to_be_hidden()  # opening the drawer marked it seen, not read
        expect(tab.bell()).to_have_accessible_name("Notifications, 1 unread")
        expect(tab.item(item_id)).to_have_attribute("data-unread", "true")
        expect(tab.page.get_by_test_id("push-switch")).to_be_hidden()  # no push settings
        _screenshot(tab, "unread")
        assert client.post("/v1/codes/C-9:clear-notifications").status_code == 200
        _shows_nothing(tab)
        expect(tab.item(item_id)).to_have_count(0)
        _screenshot(tab, "cleared")
        assert tab.page.evaluate("window.__notReloaded") is True
        refused = "the server responded with a status of 403"  # GET /v1/me/settings, expected
        assert [e for e in tab.errors if refused not in e] == []


def _code_user(client: Client, pg: Any, tenant_id: str, code_id: str, subject_id: str) -> str:
    """An access token of a code user subscribed (by email) to a ticket of the code."""
    from datetime import UTC, datetime

    from router.delivery import access

    client.put(f"/v1/subjects/ticket/{subject_id}",
               json={"kind": "ticket", "id": subject_id, "code_id": code_id})
    client.put("/v1/subscriptions/cu-1", json={
        "id": "cu-1", "subject_kind": "ticket", "subject_id": subject_id, "code_id": code_id,
        "email": "anon@example.com", "created_by": "employee"})
    with pg.session() as s:
        token, _ = access.issue(s, tenant_id, code_id, ("ticket", subject_id), "cu-1",
                                datetime.now(UTC), 14)
    return token
