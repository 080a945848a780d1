"""The <herald-inbox> bell, toast and drawer in real headless Chromium, against a
Redis-backed Herald deployment (API + worker processes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import ROOT
from tests.harness import Client
from tests.inbox import (
    AVATAR,
    Inbox,
    deployed,
    event,
    publish,
    seed_people,
    user_token,
    wait_delivered,
)
from tests.inbox.browser import (
    chromium,
    png,
    require_chromium,
    wait_for,
    watch_errors,
    watch_frames,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOT = Path(ROOT) / "artifacts" / "inbox-drawer.png"  # gitignored
ITEM_PARTS = ["unread-dot", "time", "stack-count", "subject-number", "title", "message",
              "avatar", "icon"]


@pytest.fixture(scope="module")
def executable() -> str:
    return require_chromium()  # first: no deployment is started for a skipped test


@pytest.fixture(scope="module")
def deployment(executable, tmp_path_factory, pg):
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with deployed(tmp_path_factory.mktemp("browser")) as herald:
        yield herald


@pytest.fixture
def alice(deployment, new_tenant_key):
    """(service client, alice's token) with two unread items: T-1 stacked twice, T-2."""
    tenant_id, key, secret = new_tenant_key()
    with Client(deployment.url, key) as client:
        seed_people(client)
        for doc in (event("T-1", "ticket.message_added", message="Is anyone on it?"),
                    event("T-1", "ticket.message_added", message="The lift is stuck again"),
                    event("T-2", title="Leaking pipe")):
            publish(client, doc)
            wait_delivered(client, doc["id"])  # nothing arrives live after the page opens
        yield client, user_token(secret, tenant_id, "alice")


def test_bell_toast_and_drawer_show_and_mark_notifications(executable, deployment, alice):
    client, token = alice
    stacked_id = _item_id(deployment.url, token, "T-1")
    with chromium(executable) as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        context.route("https://avatars.herald.test/**",
                      lambda route: route.fulfill(body=png(), content_type="image/png"))
        page = context.new_page()
        errors = watch_errors(page)
        frames = watch_frames(page)
        page.goto(f"{deployment.url}/demo?token={token}&no_navigate=1&lang=en")
        _bell_shows_the_unread_count_of_existing_items(page, frames)
        _a_live_event_pops_a_toast_and_bumps_the_count(page, client)
        _the_drawer_shows_every_part_of_a_stacked_item(page, stacked_id)
        page.screenshot(path=str(SCREENSHOT))
        _clicking_the_item_marks_it_read(page, deployment.url, stacked_id)
        context.close()
    with Inbox(deployment.url, token) as inbox:
        assert {i["id"]: i["unread"] for i in inbox.items()}[stacked_id] is False
        assert inbox.unread() == 2
    assert errors == []


def _bell_shows_the_unread_count_of_existing_items(page: Page, frames: list[dict]) -> None:
    expect(page.get_by_test_id("unread-count")).to_have_text("2")
    wait_for(page, lambda: any(f["type"] == "hello" for f in frames), "the hello frame")


def _a_live_event_pops_a_toast_and_bumps_the_count(page: Page, client: Client) -> None:
    sent = time.monotonic()
    client.post("/v1/events", json=event("T-3", title="Door jammed"))
    toast = page.get_by_test_id("toast-item")
    expect(toast).to_be_visible()
    print(f"\npublish -> toast in Chromium: {(time.monotonic() - sent) * 1000:.0f} ms")
    expect(toast.get_by_test_id("toast-title")).to_have_text("New ticket #T-3")
    expect(toast.get_by_test_id("toast-subject-number")).to_have_text("#T-3")
    expect(page.get_by_test_id("unread-count")).to_have_text("3")
    toast.get_by_test_id("toast-close").click()
    expect(toast).to_have_count(0)


def _the_drawer_shows_every_part_of_a_stacked_item(page: Page, item_id: int) -> None:
    page.get_by_test_id("bell").click()
    drawer = page.get_by_test_id("drawer")
    expect(drawer).to_be_visible()
    items = drawer.get_by_test_id("item")
    expect(items).to_have_count(3)
    # opening the drawer marks what it shows seen: the badge (unseen) clears, the items
    # stay unread until clicked
    expect(page.get_by_test_id("unread-count")).to_be_hidden()
    expect(page.get_by_test_id("bell")).to_have_accessible_name("Notifications, 3 unread")
    expect(items.first.get_by_test_id("subject-number")).to_have_text("#T-3")  # newest first
    stacked = _item(page, item_id)
    for part in ITEM_PARTS:
        expect(stacked.get_by_test_id(part)).to_have_count(1)
        expect(stacked.get_by_test_id(part)).to_be_visible()
    expect(stacked.get_by_test_id("stack-count")).to_have_text("×2")
    expect(stacked.get_by_test_id("subject-number")).to_have_text("#T-1")
    expect(stacked.get_by_test_id("title")).to_have_text("New message on ticket #T-1")
    expect(stacked.get_by_test_id("message")).to_have_text(
        "Max Muster wrote on ticket #T-1: “The lift is stuck again”")
    expect(stacked.get_by_test_id("time")).not_to_be_empty()
    avatar = stacked.get_by_test_id("avatar")
    expect(avatar).to_have_attribute("src", AVATAR)
    page.wait_for_function("img => img.complete && img.naturalWidth === 40",
                           arg=avatar.element_handle())
    expect(stacked.get_by_test_id("icon")).to_have_attribute("data-kind", "ticket")


def _clicking_the_item_marks_it_read(page: Page, url: str, item_id: int) -> None:
    stacked = _item(page, item_id)
    stacked.click()
    expect(stacked).to_have_attribute("data-unread", "false")
    expect(stacked.get_by_test_id("unread-dot")).to_have_count(0)
    expect(page.get_by_test_id("bell")).to_have_accessible_name("Notifications, 2 unread")
    expect(page.locator("#log")).to_have_text("#T-1 · New message on ticket #T-1")
    assert page.url.startswith(f"{url}/demo?")  # no-navigate kept the page


def _item(page: Page, item_id: int) -> Locator:
    return page.get_by_test_id("drawer").locator(f'[data-testid="item"][data-id="{item_id}"]')


def _item_id(url: str, token: str, subject_id: str) -> int:
    with Inbox(url, token) as inbox:
        return next(i["id"] for i in inbox.items() if i["subject"]["id"] == subject_id)
