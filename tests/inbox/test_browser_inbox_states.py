"""Seen, archive and snooze in the <herald-inbox> component (issue #16), in real headless
Chromium against a Redis-backed deployment (API + worker processes): what the badge
counts, the tabs, the row actions, a snooze that wakes, two tabs that stay in step, an
axe-core scan, and screenshots in English and German (tests/artifacts/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser_tools import artifacts, axe_violations
from tests.harness import Client, Herald, wait_until
from tests.inbox import Inbox, event, publish, seed_people, start, user_token, wait_delivered
from tests.inbox.browser import chromium, png, require_chromium, wait_for, watch_errors

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FOLLOW_MS = 5000  # another tab follows a change within this, or the test fails


@pytest.fixture(scope="module")
def executable() -> str:
    return require_chromium()  # first: no deployment is started for a skipped test


@pytest.fixture(scope="module")
def deployment(executable, tmp_path_factory, pg) -> Iterator[Herald]:
    herald = Herald(tmp_path_factory.mktemp("inbox-states"), smtp={"port": 1})
    try:
        start(herald)
        yield herald
    finally:
        herald.stop()


@pytest.fixture(scope="module")
def browser(executable) -> Iterator[Any]:
    with chromium(executable) as running:
        yield running


@pytest.fixture
def people(deployment, new_tenant_key) -> Iterator[tuple[Client, str, str]]:
    """(service client, alice's token, greta's token) in a fresh tenant."""
    tenant_id, key, secret = new_tenant_key()
    with Client(deployment.url, key) as client:
        seed_people(client)
        yield (client, user_token(secret, tenant_id, "alice"),
               user_token(secret, tenant_id, "greta"))


def _quietly(client: Client, *docs: dict[str, Any]) -> None:
    """Publish and wait until delivered: nothing of it arrives live after a page opens."""
    for doc in docs:
        publish(client, doc)
        wait_delivered(client, doc["id"])


class Tab:
    """One page with the demo inbox of one receiver."""

    def __init__(self, browser: Any, url: str, token: str, lang: str = "en") -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           locale="de-DE" if lang == "de" else "en-US")
        self.context.route("https://avatars.herald.test/**",
                           lambda route: route.fulfill(body=png(), content_type="image/png"))
        self.page: Page = self.context.new_page()
        self.errors = watch_errors(self.page)
        self.frames: list[dict[str, Any]] = []
        self.page.on("websocket", lambda ws: ws.on(
            "framereceived", lambda payload: self.frames.append(__import__("json").loads(payload))))
        self.page.goto(f"{url}/demo?token={token}&no_navigate=1&lang={lang}")
        wait_for(self.page, lambda: any(f["type"] == "hello" for f in self.frames), "the hello")

    def close(self) -> None:
        self.context.close()

    def badge(self) -> Locator:
        return self.page.get_by_test_id("unread-count")

    def bell(self) -> Locator:
        return self.page.get_by_test_id("bell")

    def drawer(self) -> Locator:
        return self.page.get_by_test_id("drawer")

    def open(self) -> None:
        self.bell().click()
        expect(self.drawer()).to_be_visible()

    def close_drawer(self) -> None:
        self.page.keyboard.press("Escape")
        expect(self.drawer()).to_be_hidden()

    def row(self, item_id: int) -> Locator:
        return self.drawer().locator(f'[data-testid="row"][data-id="{item_id}"]')

    def item(self, item_id: int) -> Locator:
        return self.row(item_id).get_by_test_id("item")

    def view(self, name: str) -> Locator:
        return self.page.get_by_test_id(f"view-{name}")

    def ids(self) -> list[int]:
        return [int(i) for i in self.drawer().get_by_test_id("row").evaluate_all(
            "rows => rows.map(r => r.dataset.id)")]


def _ids(url: str, token: str, **params: Any) -> dict[str, int]:
    with Inbox(url, token) as box:
        return {i["subject"]["id"]: i["id"] for i in box.items(**params)}


def _api(url: str, token: str) -> Inbox:
    return Inbox(url, token)


# ---------------------------------------------------------------------- seen and read


def test_the_badge_counts_unseen_items_and_opening_the_drawer_sees_what_it_shows(
        deployment, browser, people):
    client, alice, _ = people
    _quietly(client, event("B-1"), event("B-2"))
    ids = _ids(deployment.url, alice)
    tab = Tab(browser, deployment.url, alice)
    try:
        expect(tab.badge()).to_have_text("2")
        expect(tab.bell()).to_have_accessible_name("Notifications, 2 unread")
        tab.open()
        expect(tab.drawer().get_by_test_id("item")).to_have_count(2)
        expect(tab.badge()).to_be_hidden()  # opening the drawer saw both
        tab.close_drawer()
        expect(tab.badge()).to_be_hidden()
        expect(tab.bell()).to_have_accessible_name("Notifications, 2 unread")  # seen, not read
        with _api(deployment.url, alice) as box:  # the server has it too (the badge goes
            # before the component's seen request is answered: wait for that, not longer)
            counts = wait_until(
                lambda: (c := box.get("/v1/me/notifications/unread-count").json())["unseen"] == 0
                and c, 10, what="the seen mark on the server")
        assert counts == {"unread": 2, "unseen": 0}

        publish(client, event("B-3"))
        expect(tab.badge()).to_have_text("1")
        expect(tab.bell()).to_have_accessible_name("Notifications, 1 new, 3 unread")
        tab.open()
        expect(tab.badge()).to_be_hidden()  # B-3 seen on opening, still unread
        tab.item(ids["B-1"]).click()  # a click reads it
        expect(tab.item(ids["B-1"])).to_have_attribute("data-unread", "false")
        expect(tab.bell()).to_have_accessible_name("Notifications, 2 unread")
        publish(client, event("B-4"))  # arrives while the drawer is open: new until it closes
        expect(tab.badge()).to_have_text("1")
        tab.close_drawer()
        expect(tab.badge()).to_be_hidden()
        with _api(deployment.url, alice) as box:
            items = {i["id"]: i for i in box.items()}
        assert items[ids["B-1"]]["unread"] is False
        assert [i["seen"] for i in items.values()] == [True, True, True, True]
        assert tab.errors == []
    finally:
        tab.close()


# ---------------------------------------------------------------------- archive


def test_archive_one_archive_all_read_and_the_archived_view_with_the_keyboard(
        deployment, browser, people):
    client, alice, _ = people
    _quietly(client, event("A-1"), event("A-2"), event("A-3"))
    ids = _ids(deployment.url, alice)
    with _api(deployment.url, alice) as box:
        assert box.read(ids["A-2"]).status_code == 200
    tab = Tab(browser, deployment.url, alice)
    try:
        tab.open()
        expect(tab.view("all")).to_have_attribute("aria-selected", "true")
        tab.row(ids["A-3"]).get_by_test_id("archive").focus()
        tab.page.keyboard.press("Enter")
        expect(tab.row(ids["A-3"])).to_have_count(0)
        expect(tab.page.get_by_test_id("announce")).to_have_text("Archived.")
        focused = tab.page.evaluate("document.activeElement.shadowRoot.activeElement.dataset.testid")
        assert focused == "item"  # the keyboard stays in the list
        expect(tab.bell()).to_have_accessible_name("Notifications, 1 unread")  # A-3 was read
        # by archiving it (the badge, unseen items, cleared when the drawer opened)

        tab.page.get_by_test_id("archive-read").click()
        expect(tab.row(ids["A-2"])).to_have_count(0)
        expect(tab.row(ids["A-1"])).to_be_visible()  # unread: stays

        tab.view("all").focus()
        tab.page.keyboard.press("ArrowRight")  # all -> archived
        expect(tab.view("archived")).to_have_attribute("aria-selected", "true")
        expect(tab.view("archived")).to_be_focused()
        expect(tab.drawer().get_by_test_id("row")).to_have_count(2)
        assert sorted(tab.ids()) == sorted([ids["A-2"], ids["A-3"]])
        tab.row(ids["A-3"]).get_by_test_id("unarchive").click()
        expect(tab.row(ids["A-3"])).to_have_count(0)
        tab.view("unread").click()
        expect(tab.drawer().get_by_test_id("row")).to_have_count(1)
        tab.view("all").click()
        expect(tab.drawer().get_by_test_id("row")).to_have_count(2)
        assert sorted(tab.ids()) == sorted([ids["A-1"], ids["A-3"]])
        assert _ids(deployment.url, alice, view="archived") == {"A-2": ids["A-2"]}
        assert tab.errors == []
    finally:
        tab.close()


def test_the_list_scrolls_on_through_the_cursor_pages(deployment, browser, people):
    client, alice, _ = people
    publish(client, *[event(f"P-{i}") for i in range(41)])  # routed before the page opens
    tab = Tab(browser, deployment.url, alice)
    try:
        tab.open()
        rows = tab.drawer().get_by_test_id("row")
        expect(rows).to_have_count(30)  # the first page
        rows.nth(29).scroll_into_view_if_needed()
        expect(rows).to_have_count(41)
        assert len(set(tab.ids())) == 41
    finally:
        tab.close()


# ---------------------------------------------------------------------- snooze


def test_snoozing_from_the_row_and_a_short_snooze_that_wakes_on_top_with_a_toast(
        deployment, browser, people):
    client, alice, _ = people
    _quietly(client, event("Z-1"), event("Z-2"), event("Z-3"))
    ids = _ids(deployment.url, alice)
    tab = Tab(browser, deployment.url, alice)
    try:
        tab.open()
        tab.row(ids["Z-1"]).get_by_test_id("snooze").click()
        menu = tab.row(ids["Z-1"]).get_by_test_id("snooze-menu")
        expect(menu).to_be_visible()
        expect(tab.row(ids["Z-1"]).get_by_test_id("snooze")).to_have_attribute(
            "aria-expanded", "true")
        expect(menu.get_by_test_id("snooze-option")).to_have_text(
            ["In 1 hour", "Tomorrow, 09:00", "Next week, Monday 09:00"])
        expect(menu.get_by_test_id("snooze-option").first).to_be_focused()
        tab.page.keyboard.press("Enter")  # in one hour
        expect(tab.row(ids["Z-1"])).to_have_count(0)
        expect(tab.page.get_by_test_id("announce")).to_have_text(re.compile(r"^Snoozed until "))
        with _api(deployment.url, alice) as box:
            [snoozed] = box.items(view="snoozed")
        until = datetime.fromisoformat(snoozed["snoozed_until"])
        assert abs((until - datetime.now(UTC)) - timedelta(hours=1)) < timedelta(minutes=1)

        with _api(deployment.url, alice) as box:  # a short snooze, through the API
            soon = datetime.now(UTC) + timedelta(seconds=3)
            response = box.post(f"/v1/me/notifications/{ids['Z-2']}/snooze",
                                 json={"until": soon.isoformat()})
            assert response.status_code == 200
        expect(tab.row(ids["Z-2"])).to_have_count(0)  # gone from this tab too
        toast = tab.page.get_by_test_id("toast").locator(
            f'[data-testid="toast-item"][data-id="{ids["Z-2"]}"]')
        expect(toast).to_be_visible(timeout=10_000)
        assert tab.ids()[0] == ids["Z-2"]  # back on top
        expect(tab.item(ids["Z-2"])).to_have_attribute("data-unread", "true")
        assert any(f.get("woke") for f in tab.frames if f["type"] == "item")
        assert tab.errors == []
    finally:
        tab.close()


# ---------------------------------------------------------------------- two tabs


def test_two_tabs_stay_in_step_on_seen_read_archive_and_snooze(deployment, browser, people):
    client, alice, _ = people
    _quietly(client, event("T-1"), event("T-2"), event("T-3"), event("T-4"))
    ids = _ids(deployment.url, alice)
    one, two = Tab(browser, deployment.url, alice), Tab(browser, deployment.url, alice)
    try:
        for tab in (one, two):
            expect(tab.badge()).to_have_text("4")
        two.open()
        one.open()
        one.close_drawer()  # one saw all four
        expect(two.badge()).to_be_hidden(timeout=FOLLOW_MS)
        expect(two.bell()).to_have_accessible_name("Notifications, 4 unread")

        one.open()
        one.item(ids["T-1"]).click()
        expect(two.item(ids["T-1"])).to_have_attribute("data-unread", "false", timeout=FOLLOW_MS)
        expect(two.bell()).to_have_accessible_name("Notifications, 3 unread")

        one.row(ids["T-2"]).get_by_test_id("archive").click()
        expect(two.row(ids["T-2"])).to_have_count(0, timeout=FOLLOW_MS)
        expect(two.bell()).to_have_accessible_name("Notifications, 2 unread")

        two.row(ids["T-3"]).get_by_test_id("snooze").click()
        two.row(ids["T-3"]).get_by_test_id("snooze-option").first.click()
        expect(one.row(ids["T-3"])).to_have_count(0, timeout=FOLLOW_MS)
        expect(one.bell()).to_have_accessible_name("Notifications, 1 unread")

        two.view("archived").click()
        two.row(ids["T-2"]).get_by_test_id("unarchive").click()
        expect(one.row(ids["T-2"])).to_be_visible(timeout=FOLLOW_MS)

        publish(client, event("T-5"))
        for tab in (one, two):
            expect(tab.badge()).to_have_text("1", timeout=FOLLOW_MS)
            expect(tab.bell()).to_have_accessible_name("Notifications, 1 new, 2 unread")
        assert one.errors == [] and two.errors == []
    finally:
        one.close()
        two.close()


# ---------------------------------------------------------------------- a11y, screenshots


@pytest.mark.parametrize("lang", ["en", "de"])
def test_the_inbox_passes_an_axe_scan_and_is_photographed(deployment, browser, people, lang):
    client, alice, greta = people
    _quietly(client, event("X-1", "ticket.message_added", message="Lift stuck", participants=["greta"]),
             event("X-1", "ticket.message_added", message="Still stuck", participants=["greta"]),
             event("X-2", title="Leaking pipe", participants=["greta"]),
             event("X-3", "task.created", number="K-7", actor=None, title="Oil change",
                   participants=["greta"]))
    token = greta if lang == "de" else alice
    ids = _ids(deployment.url, token)
    with _api(deployment.url, token) as box:
        assert box.read(ids["X-2"]).status_code == 200
    tab = Tab(browser, deployment.url, token, lang)
    try:
        folder = artifacts()
        problems = axe_violations(tab.page)
        tab.open()
        tab.row(ids["X-1"]).get_by_test_id("snooze").click()
        expect(tab.row(ids["X-1"]).get_by_test_id("snooze-menu")).to_be_visible()
        tab.page.screenshot(path=str(folder / f"inbox-states-{lang}.png"))
        problems += axe_violations(tab.page)
        tab.page.keyboard.press("Escape")  # the snooze choices close first
        expect(tab.row(ids["X-1"]).get_by_test_id("snooze-menu")).to_have_count(0)
        tab.view("archived").click()
        expect(tab.drawer().get_by_test_id("status")).to_be_visible()
        tab.page.screenshot(path=str(folder / f"inbox-states-{lang}-archived.png"))
        problems += axe_violations(tab.page)
        assert problems == []
        words = {"en": ("All", "Archive all read", "Snooze"),
                 "de": ("Alle", "Alle gelesenen archivieren", "Zurückstellen")}[lang]
        expect(tab.view("all")).to_have_text(words[0])
        expect(tab.page.get_by_test_id("archive-read")).to_be_hidden()  # not in the archive
        tab.view("all").click()
        expect(tab.page.get_by_test_id("archive-read")).to_have_text(words[1])
        expect(tab.row(ids["X-2"]).get_by_test_id("snooze")).to_have_text(words[2])
        assert tab.errors == []
    finally:
        tab.close()
