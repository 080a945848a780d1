"""<herald-preferences> in real headless Chromium against a real `herald serve` over
PostgreSQL and Redis: what a person changes is saved and survives a reload, a refused
value shows its message next to the field and nothing is saved, rows reset to their
default, the customer and code-user views, keyboard use, and an axe-core scan; the
component is photographed in English and German (tests/artifacts/, gitignored)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.harness import Herald
from tests.inbox import Inbox, people_tenant, user_token
from tests.inbox.browser import chromium, require_chromium, watch_errors
from tests.prefs import seed_people, sign_up_code_user
from tests.prefs.browser import (
    ARTIFACTS,
    SEVERE,
    axe_violations,
    channel_order,
    described,
    open_preferences,
    photograph,
    row,
    save,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def executable() -> str:
    return require_chromium()  # first: no deployment is started for a skipped test


@pytest.fixture(scope="module")
def deployment(executable, tmp_path_factory, pg):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    herald = Herald(tmp_path_factory.mktemp("prefs-browser"), smtp={"port": 1})
    try:
        herald.start_api()
        yield herald
    finally:
        herald.stop()


@pytest.fixture(scope="module")
def browser(executable):
    with chromium(executable) as running:
        yield running


@pytest.fixture
def tenant(deployment, new_tenant_key):
    with people_tenant(deployment.url, new_tenant_key, seed_people) as made:
        yield made


# Answers a page may get: the refusals these tests provoke, and the demo page's inbox asking
# a code user's token for settings (the inbox's push switch; code users have none)
EXPECTED_REFUSALS = {(422, "PUT", "/v1/me/settings"), (403, "GET", "/v1/me/settings")}


@pytest.fixture
def locale() -> str:
    return "en-US"


@pytest.fixture
def page(browser, locale):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    opened = context.new_page()
    errors = watch_errors(opened)
    refused: list[tuple[int, str, str]] = []
    opened.on("response", lambda r: r.status >= 400 and refused.append(
        (r.status, r.request.method, urlsplit(r.url).path)))
    yield opened
    context.close()
    assert set(refused) <= EXPECTED_REFUSALS, refused
    assert [e for e in errors if not e.startswith("Failed to load resource")] == []


@pytest.fixture
def as_user(deployment, tenant, page):
    """Open the component as a user: as_user("alice") -> (component, their API client)."""
    tenant_id, secret, _ = tenant
    clients: list[Inbox] = []

    def open_as(user_id: str, lang: str | None = None) -> tuple[Locator, Inbox]:
        token = user_token(secret, tenant_id, user_id)
        clients.append(Inbox(deployment.url, token))
        return open_preferences(page, deployment.url, token, lang), clients[-1]

    yield open_as
    for client in clients:
        client.close()


def _settings(api: Inbox) -> dict:
    response = api.get("/v1/me/settings")
    assert response.status_code == 200, response.text
    return response.json()


def test_switches_rows_and_time_settings_save_and_survive_a_reload(as_user, page: Page):
    prefs, api = as_user("alice", "en")
    expect(prefs.get_by_test_id("browser-state")).to_have_text("Always on")
    expect(prefs.get_by_test_id("browser-reason")).to_contain_text("every notification is kept")
    expect(prefs.get_by_test_id("switch-customer_notifications")).to_have_count(0)  # employees
    prefs.get_by_test_id("switch-email").uncheck()
    ticket = row(prefs, "ticket.created")
    ticket.get_by_test_id("channel-browser").uncheck()
    ticket.get_by_test_id("earlier-email").click()  # push, email -> email, push
    ticket.get_by_test_id("origin-me").check()
    expect(ticket.get_by_test_id("source")).to_have_text("Your setting")
    row(prefs, "all").get_by_test_id("strategy").select_option("first_success")
    expect(row(prefs, "task.created").get_by_test_id("source")).to_have_text(
        "From “All notifications”")
    prefs.get_by_test_id("time-zone").select_option("Europe/Berlin")
    prefs.get_by_test_id("add-quiet").click()
    prefs.get_by_test_id("quiet-0-sat").check()
    prefs.get_by_test_id("quiet-0-from").fill("21:30")
    prefs.get_by_test_id("digest-cadence").select_option("daily")
    prefs.get_by_test_id("digest-at").fill("08:15")
    save(prefs, "Your settings are saved.")

    page.reload()
    prefs = open_preferences(page, page.url.split("/demo")[0], page.url.split("token=")[1]
                             .split("&")[0], "en")
    expect(prefs.get_by_test_id("switch-email")).not_to_be_checked()
    expect(prefs.get_by_test_id("switch-push")).to_be_checked()
    ticket = row(prefs, "ticket.created")
    assert channel_order(prefs, "ticket.created") == ["email", "push"]
    expect(ticket.get_by_test_id("source")).to_have_text("Your setting")
    expect(ticket.get_by_test_id("origin-me")).to_be_checked()
    expect(row(prefs, "all").get_by_test_id("strategy")).to_have_value("first_success")
    expect(row(prefs, "task.created").get_by_test_id("strategy")).to_have_value("first_success")
    expect(prefs.get_by_test_id("time-zone")).to_have_value("Europe/Berlin")
    expect(prefs.get_by_test_id("quiet-window")).to_have_count(1)
    expect(prefs.get_by_test_id("quiet-0-from")).to_have_value("21:30")
    expect(prefs.get_by_test_id("digest-at")).to_have_value("08:15")
    stored = _settings(api)
    assert stored["email"] is False and stored["push"] is True
    assert stored["advanced"] == {
        "ticket.created": {"channels": ["email", "push"], "origin": ["others", "me"],
                           "strategy": "all"},
        "all": {"channels": ["browser", "push", "email"], "origin": ["others"],
                "strategy": "first_success"}}
    assert stored["quiet_hours"] == [{"days": ["mon", "tue", "wed", "thu", "fri", "sat"],
                                      "from": "21:30", "to": "07:00"}]
    assert stored["email_digest"] == {"cadence": "daily", "at": "08:15"}
    assert api.get("/v1/me/time-zone").json()["time_zone"] == "Europe/Berlin"


def test_a_refused_value_shows_the_apis_message_next_to_its_field_and_nothing_is_saved(
        as_user, page: Page):
    prefs, api = as_user("alice", "en")
    before = _settings(api)
    prefs.get_by_test_id("switch-push").uncheck()  # would be saved with the rest
    prefs.get_by_test_id("time-zone").select_option("Asia/Tokyo")  # likewise
    for _ in range(2):
        prefs.get_by_test_id("add-quiet").click()
    prefs.get_by_test_id("quiet-1-from").fill("23:00")
    prefs.get_by_test_id("quiet-1-to").fill("23:30")  # Monday 23:00 is inside the first window
    save(prefs, "Nothing was saved: please correct the marked fields.")
    window = prefs.get_by_test_id("quiet-window").nth(1)
    message = window.locator('[data-error="quiet_hours.1.from"]')
    expect(message).to_have_text("overlaps quiet_hours.0 (the window starting mon)")
    expect(prefs.get_by_test_id("quiet-1-from")).to_have_attribute("aria-invalid", "true")
    expect(prefs.get_by_test_id("quiet-1-from")).to_be_focused()
    assert _settings(api) == before
    assert api.get("/v1/me/time-zone").json()["time_zone"] is None

    prefs.get_by_test_id("remove-quiet-1").click()
    prefs.get_by_test_id("digest-cadence").select_option("daily")  # and no time given
    save(prefs, "Nothing was saved: please correct the marked fields.")
    expect(prefs.locator('[data-error="email_digest.at"]')).to_have_text(
        "a daily digest needs 'at', the local time it goes out (HH:MM)")
    expect(prefs.get_by_test_id("digest-at")).to_have_attribute("aria-invalid", "true")
    assert _settings(api) == before

    prefs.get_by_test_id("digest-at").fill("07:45")
    save(prefs, "Your settings are saved.")
    expect(prefs.locator('[data-error="email_digest.at"]')).to_be_hidden()
    stored = _settings(api)
    assert stored["push"] is False and stored["email_digest"] == {"cadence": "daily", "at": "07:45"}
    assert api.get("/v1/me/time-zone").json()["time_zone"] == "Asia/Tokyo"


def test_reset_to_default_drops_the_users_row_and_the_row_follows_all_then_the_rule_file(
        as_user, page: Page):
    _, api = as_user("alice", "en")
    api.put("/v1/me/settings", json={"advanced": {
        "all": {"channels": ["email"]}, "video_session.direct_call": {"channels": ["push"]}}})
    prefs, _ = as_user("alice", "en")
    call = row(prefs, "video_session.direct_call")
    expect(call.get_by_test_id("source")).to_have_text("Your setting")
    call.get_by_test_id("reset").click()
    expect(call.get_by_test_id("source")).to_have_text("From “All notifications”")
    assert channel_order(prefs, "video_session.direct_call") == ["email"]
    expect(call.get_by_test_id("reset")).to_have_count(0)  # nothing of its own to reset
    expect(call.get_by_test_id("strategy")).to_be_focused()
    row(prefs, "all").get_by_test_id("reset").click()
    expect(call.get_by_test_id("source")).to_have_text("Default")
    assert channel_order(prefs, "video_session.direct_call") == ["browser", "push"]  # rule file
    expect(call.get_by_test_id("strategy")).to_have_value("first_success")
    save(prefs, "Your settings are saved.")
    assert _settings(api)["advanced"] == {}
    page.reload()
    expect(row(page.locator("herald-preferences"), "video_session.direct_call")
           .get_by_test_id("source")).to_have_text("Default")


def test_a_customer_sees_their_switch_in_their_own_language(as_user):
    prefs, api = as_user("carla")  # no lang attribute: Carla's own language, German
    expect(prefs.locator("h2")).to_have_text("Benachrichtigungseinstellungen")
    expect(row(prefs, "ticket.created").locator("th")).to_contain_text("Neues Ticket")
    switch = prefs.get_by_test_id("switch-customer_notifications")
    expect(switch).to_be_checked()
    switch.uncheck()
    save(prefs, "Ihre Einstellungen sind gespeichert.")
    assert _settings(api)["customer_notifications"] is False


def test_a_code_user_sees_their_subscription_and_unsubscribes(deployment, tenant, pg, page: Page):
    tenant_id, _, client = tenant
    token = sign_up_code_user(client, pg, tenant_id)
    prefs = open_preferences(page, deployment.url, token)
    card = prefs.get_by_test_id("subscription")
    expect(card.locator("h2")).to_have_text("Benachrichtigungen zu Ticket #4711")
    expect(card).to_contain_text("v•••r@example.com")
    card.get_by_test_id("unsubscribe").click()
    expect(card.get_by_test_id("confirm-unsubscribe")).to_be_focused()
    page.keyboard.press("Enter")
    expect(card.get_by_test_id("unsubscribed")).to_have_text(
        "Sie sind abgemeldet: Sie erhalten keine Benachrichtigungen mehr zu Ticket #4711.")
    with Inbox(deployment.url, token) as visitor:
        assert visitor.get("/v1/me/subscription").json()["active"] is False
    page.reload()
    expect(page.locator("herald-preferences").get_by_test_id("unsubscribed")).to_be_visible()


def test_the_table_is_operable_by_keyboard_and_keeps_the_focus_where_the_person_is(
        as_user, page: Page):
    prefs, api = as_user("alice", "en")
    prefs.get_by_test_id("switch-push").focus()
    page.keyboard.press("Space")
    expect(prefs.get_by_test_id("switch-push")).not_to_be_checked()
    page.keyboard.press("Tab")
    expect(prefs.get_by_test_id("switch-email")).to_be_focused()
    earlier = row(prefs, "ticket.assigned").get_by_test_id("earlier-email")
    earlier.focus()
    page.keyboard.press("Enter")  # browser, push, email -> browser, email, push
    expect(earlier).to_be_focused()
    page.keyboard.press("Enter")  # -> email, browser, push: the button is gone, its box has it
    assert channel_order(prefs, "ticket.assigned") == ["email", "browser", "push"]
    expect(row(prefs, "ticket.assigned").get_by_test_id("channel-email")).to_be_focused()
    page.keyboard.press("Space")  # email off
    assert channel_order(prefs, "ticket.assigned") == ["browser", "push"]
    prefs.get_by_test_id("save").focus()
    page.keyboard.press("Enter")
    expect(prefs.get_by_test_id("status")).to_have_text("Your settings are saved.")
    stored = _settings(api)
    assert stored["push"] is False
    assert stored["advanced"]["ticket.assigned"]["channels"] == ["browser", "push"]


@pytest.mark.parametrize("user_id, lang, locale", [("alice", "en", "en-US"),
                                                   ("greta", "de", "de-DE")])
def test_no_serious_accessibility_violations_and_a_screenshot_in_each_language(
        as_user, page: Page, user_id, lang):
    prefs, _ = as_user(user_id)  # each in their own language
    expect(prefs.locator("h2")).to_have_text(
        {"en": "Notification settings", "de": "Benachrichtigungseinstellungen"}[lang])
    prefs.get_by_test_id("add-quiet").click()
    prefs.get_by_test_id("digest-cadence").select_option("daily")
    save(prefs, {"en": "Nothing was saved: please correct the marked fields.",
                 "de": "Nichts wurde gespeichert: Bitte korrigieren Sie die markierten Felder."}[lang])
    severe = [v for v in axe_violations(page) if v["impact"] in SEVERE]
    assert severe == [], described(severe)
    photograph(page, prefs, f"preferences-{lang}.png")


def test_the_code_user_view_has_no_serious_accessibility_violations(deployment, tenant, pg,
                                                                    page: Page):
    tenant_id, _, client = tenant
    prefs = open_preferences(page, deployment.url, sign_up_code_user(client, pg, tenant_id),
                             "en")
    prefs.get_by_test_id("unsubscribe").click()
    severe = [v for v in axe_violations(page) if v["impact"] in SEVERE]
    assert severe == [], described(severe)
    photograph(page, prefs, "preferences-code-user-en.png")
