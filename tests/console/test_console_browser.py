"""The console in headless Chromium: signing in through the form, every page in en
and de with real data (screenshots in tests/artifacts/), an axe-core scan with no
serious or critical violation, and a retry clicked on the failures page that really
re-sends the mail."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.console import Tenant, new_tenant, ticket_event
from tests.console.browser import axe_violations, screenshot
from tests.harness import Herald, own_mails, wait_until
from tests.inbox.browser import chromium, require_chromium, watch_errors

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def executable() -> str:
    return require_chromium()  # first: no deployment is started for a skipped test


@pytest.fixture(scope="module")
def herald(executable, tmp_path_factory, pg, sink) -> Iterator[Herald]:
    deployment = Herald(tmp_path_factory.mktemp("console-browser"), smtp={"port": sink.port})
    try:
        deployment.start_api()
        deployment.start_worker()
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="module")
def acme(herald, pg, sink) -> Iterator[Tenant]:
    tenant = new_tenant(herald, pg, prefix="web-")
    with tenant.client:
        sink.reject("web-cleo@acme.example", 550, "5.1.1 mailbox unavailable")
        assert tenant.client.post("/v1/events", json=ticket_event("web-1")).status_code == 202
        tenant.client.wait_terminal("web-1")
        sink.accept_all()
        yield tenant


PAGES = {
    "rules": "/console/rules",
    "audience": "/console/audience?type=ticket.created&subject_kind=ticket&subject_id=T-1",
    "activity": "/console/activity",
    "event": "/console/activity/web-1",
    "failures": "/console/failures",
    "health": "/console/health",
}


def test_every_page_in_en_and_de_renders_real_data_and_passes_axe(herald, executable, acme):
    with chromium(executable) as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page = context.new_page()
        errors = watch_errors(page)
        page.goto(f"{herald.url}/console/activity")
        expect(page).to_have_url(f"{herald.url}/console/login?next=%2Fconsole%2Factivity")
        page.get_by_label("Console key").fill(acme.console_key)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{herald.url}/console/activity")
        expect(page.get_by_role("link", name="web-1")).to_be_visible()
        found: dict[str, list[str]] = {}
        for lang in ("en", "de"):
            for name, path in PAGES.items():
                page.goto(f"{herald.url}{path}{'&' if '?' in path else '?'}lang={lang}")
                expect(page.locator("html")).to_have_attribute("lang", lang)
                screenshot(page, f"{name}-{lang}")
                found[f"{name}-{lang}"] = axe_violations(page)
            page.goto(f"{herald.url}/console/explain?lang={lang}")
            page.get_by_label("Event (JSON)" if lang == "en" else "Ereignis (JSON)").fill(
                json.dumps(ticket_event("probe", subject="T-404", etype="ticket.message_added")))
            page.locator("form[action='/console/explain'][method='post'] button").click()
            expect(page.locator("table.nobody")).to_contain_text("the directory does not know")
            screenshot(page, f"explain-{lang}")
            found[f"explain-{lang}"] = axe_violations(page)
        assert {k: v for k, v in found.items() if v} == {}
        page.goto(f"{herald.url}/console/audience?type=ticket.created&subject_kind=ticket"
                  "&subject_id=T-1&lang=en")
        expect(page.locator("#resolved")).to_contain_text("user setting for ticket.created")
        page.goto(f"{herald.url}/console/rules?lang=de")
        expect(page.get_by_role("heading", name="Verlauf")).to_be_visible()
        assert errors == []
        context.close()


def test_a_retry_clicked_on_the_failures_page_re_sends_the_mail(herald, executable, acme, sink,
                                                                pg):
    sink.clear()
    with chromium(executable) as browser:
        page = browser.new_page()
        page.goto(f"{herald.url}/console/login")
        page.get_by_label("Console key").fill(acme.console_key)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{herald.url}/console/failures")
        group = page.locator("section.group", has_text="mailbox unavailable")
        expect(group).to_contain_text("web-1")
        group.locator("input[type=checkbox]").first.check()
        group.get_by_role("button", name="Retry selected").click()
        expect(page.get_by_role("status")).to_have_text(
            "Re-driven: 0 event(s), 1 delivery(ies).")
        # this tenant's mails only: the module's worker may also send other tests' leftover
        # pending mails to this sink (the session's deployments share a schema)
        [mail] = wait_until(lambda: own_mails(sink, pg, acme.id), 30, what="the re-sent mail")
        assert mail["To"] == "web-cleo@acme.example"
        wait_until(lambda: not any(d["status"] == "failed" and d["channel"] == "email"
                                   for d in acme.client.activity("web-1")["deliveries"]), 30,
                   what="the failed mail re-sent")
        assert len(own_mails(sink, pg, acme.id)) == 1  # re-sent once
        page.goto(f"{herald.url}/console/failures")
        expect(page.locator("section.group", has_text="mailbox unavailable")).to_have_count(0)
