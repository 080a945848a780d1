"""The console's pages and endpoints against a real `herald serve` + `herald worker`
(PostgreSQL, Redis, the SMTP sink): real data on every page, credentials of the right
kind only, CSRF, tenant scoping, and a retry from the page that really re-sends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RULES
from tests.console import Console, Tenant, new_tenant, text_of, ticket_event
from tests.harness import Herald, wait_until


@pytest.fixture(scope="module")
def herald(tmp_path_factory, pg, sink):
    deployment = Herald(tmp_path_factory.mktemp("console"), smtp={"port": sink.port})
    try:
        deployment.start_api()
        deployment.start_worker()
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="module")
def acme(herald, pg) -> Iterator[Tenant]:
    tenant = new_tenant(herald, pg, prefix="acme-")
    with tenant.client:
        yield tenant


@pytest.fixture(scope="module")
def globex(herald, pg) -> Iterator[Tenant]:
    tenant = new_tenant(herald, pg, prefix="globex-")
    with tenant.client:
        yield tenant


@pytest.fixture
def console(herald, acme):
    session = Console(herald.url, acme.console_key)
    yield session
    session.close()


def published(tenant: Tenant, event: dict) -> dict:
    assert tenant.client.post("/v1/events", json=event).status_code == 202
    return tenant.client.wait_terminal(event["id"])


# ------------------------------------------------------------------ credentials


def test_signing_in_sets_a_short_lived_httponly_strict_cookie_and_no_secret_in_urls(herald, acme):
    session = Console(herald.url, acme.console_key)
    cookie = session.set_cookie.lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "max-age=7200" in cookie and "secure" not in cookie  # plain http here
    assert acme.console_key not in session.set_cookie
    page = session.page("/console/rules")
    assert acme.console_key not in page and "Sign out" in page
    session.close()


def test_wrong_keys_and_other_kinds_of_credential_are_refused_with_a_clear_message(
        herald, acme):
    login = httpx.post(f"{herald.url}/console/login", data={"key": "hc_not-a-key"})
    assert login.status_code == 401 and "unknown console key" in login.text
    for credential, says in ((acme.api_key, "this is a service API key"),
                             ("a.b.c", "this is a user token")):
        login = httpx.post(f"{herald.url}/console/login", data={"key": credential})
        assert login.status_code == 403 and says in login.text, login.text
        api = httpx.get(f"{herald.url}/console/rules",
                        headers={"Authorization": f"Bearer {credential}"})
        assert api.status_code == 403 and says in api.json()["error"]["message"]
    anonymous = httpx.get(f"{herald.url}/console/activity", headers={"Accept": "text/html"})
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=%2Fconsole%2Factivity"
    assert httpx.get(f"{herald.url}/console/activity").status_code == 401


def test_a_console_key_opens_neither_the_service_nor_the_user_api(herald, acme):
    for path in ("/v1/events/anything", "/v1/me/notifications"):
        answer = httpx.get(f"{herald.url}{path}",
                           headers={"Authorization": f"Bearer {acme.console_key}"})
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"]["code"] == "auth.console_key"
        assert "opens the admin console" in answer.json()["error"]["message"]


def test_a_tampered_cookie_and_a_revoked_key_end_the_session(herald, pg):
    tenant = new_tenant(herald, pg)
    tenant.client.close()
    session = Console(herald.url, tenant.console_key)
    name, _, value = session.set_cookie.split(";")[0].partition("=")
    forged = value[:-4] + ("0000" if not value.endswith("0000") else "1111")
    tampered = httpx.get(f"{herald.url}/console/rules", cookies={name: forged},
                         headers={"Accept": "text/html"})
    assert tampered.status_code == 303 and "/console/login" in tampered.headers["location"]
    assert session.get("/console/rules").status_code == 200
    listing = herald.cli("console-key", "list", "--tenant", tenant.id)
    assert "active" in listing.stdout and tenant.console_key not in listing.stdout
    key_id = listing.stdout.split()[0]
    assert herald.cli("console-key", "revoke", key_id, "--tenant", tenant.id).returncode == 0
    assert session.get("/console/rules").status_code == 303
    again = httpx.post(f"{herald.url}/console/login", data={"key": tenant.console_key})
    assert again.status_code == 401 and "revoked" in again.text
    session.close()


def test_a_post_without_this_sessions_csrf_token_is_refused_and_changes_nothing(
        herald, acme, console, sink):
    sink.reject("acme-ana@acme.example")
    activity = published(acme, ticket_event("csrf-1"))
    [failed] = [d for d in activity["deliveries"]
                if d["status"] == "failed" and d["channel"] == "email"]
    sink.accept_all()
    for data in ({"what": "ids", "id": failed["id"]},
                 {"what": "ids", "id": failed["id"], "csrf": "not-the-token"}):
        answer = console.post("/console/failures/retry", data, csrf=False)
        assert answer.status_code == 403 and "CSRF" in answer.text
    other = Console(herald.url, acme.console_key)  # a second session's token is not this one's
    other.get("/console/rules")
    answer = console.post("/console/failures/retry",
                          {"what": "ids", "id": failed["id"], "csrf": other.csrf}, csrf=False)
    assert answer.status_code == 403
    assert acme.client.activity("csrf-1")["deliveries"] == activity["deliveries"]
    other.close()


# ------------------------------------------------------------------ pages


def test_rules_page_shows_the_version_in_force_in_plain_words_with_history_and_a_diff(
        herald, console, tmp_path):
    edited = tmp_path / "rules"
    edited.mkdir()
    for source in Path(RULES).glob("*.yaml"):
        (edited / source.name).write_text(source.read_text().replace(
            "supervisors hear about every ticket event.", "supervisors hear of all tickets."))
    done = herald.deploy_rules(edited, "console: reworded")
    assert done.returncode == 0, done.stderr
    page = text_of(console.page("/console/rules"))
    assert "In force: Version" in page, page[page.find("Sign out"):][:800] and "console: reworded" in page
    assert "Notification Receivers: supervisors hear of all tickets." in page
    assert "type starts with “ticket.”" in page
    assert "subject.kind is one of ticket, task" in page
    assert "every employee with the role admin, moderator" in page
    version = int(page.split("In force: Version ")[1].split()[0])
    diff = text_of(console.page(f"/console/rules/diff?a={version - 1}&b={version}"))
    assert ('- description: "Ticketing > Notification Receivers: supervisors hear about every '
            'ticket event."') in diff
    assert '+ description: "Ticketing > Notification Receivers: supervisors hear of all tickets."' \
        in diff
    older = text_of(console.page(f"/console/rules?version={version - 1}"))
    assert f"Showing version Version {version - 1}" in older
    assert "supervisors hear about every ticket event." in older


def test_a_rule_file_a_deploy_would_refuse_shows_its_problems_at_file_line_col(console):
    broken = "rules:\n  - id: typo\n    when: {tpye: ticket.created}\n    receivers: [creator]\n"
    page = text_of(console.post("/console/rules/check", {"name": "extra.yaml",
                                                         "text": broken}).text)
    assert "A deploy of these files would be refused" in page
    assert ("extra.yaml:3:12: unknown field path 'tpye' (event fields, or data.<name>); "
            "did you mean 'type'?") in page
    fine = "rules:\n  - id: extra\n    when: {type: ticket.created}\n    receivers: [creator]\n"
    page = text_of(console.post("/console/rules/check", {"name": "extra.yaml",
                                                         "text": fine}).text)
    assert "These files are valid" in page and "+++ v" in page and "+ - id: extra" in page


def test_who_gets_what_shows_the_matrix_and_resolves_a_subject_with_setting_sources(console):
    page = text_of(console.page("/console/audience"))
    assert "ticket.created New ticket" in page
    assert "customer-organisation (When: subject.customer_org_id is set)" in page
    assert "browser, push, email" in page and "first_success" in page  # direct_call default
    resolved = text_of(console.page("/console/audience", params={
        "type": "ticket.created", "subject_kind": "ticket", "subject_id": "T-1"}))
    assert "Ana (employee ana, en) browser, email all rule-file default 'all'" in resolved
    assert "Cleo (employee cleo, en) browser, email first_success user setting for ticket.created" \
        in resolved
    assert "Carla (customer carla" in resolved and "Ben (employee ben" in resolved
    assert "the push switch" in resolved or "no browser subscription or app device" in resolved


def test_explain_says_which_selector_found_nobody_and_shows_the_timeline(console):
    unknown = ticket_event("x-1", subject="T-404", etype="ticket.message_added")
    import json

    page = text_of(console.post("/console/explain", {"event": json.dumps(unknown)}).text)
    assert "Nobody would receive it." in page
    assert ("ticket-notification-receivers template_group: notification_receivers the subject "
            "has no template (the directory does not know ticket T-404)") in page
    requested = {"id": "x-2", "type": "video_session.requested",
                 "subject": {"kind": "video_session", "id": "V-1", "number": "V-1",
                             "creator_id": "ben"}}
    page = text_of(console.post("/console/explain", {"event": json.dumps(requested)}).text)
    assert "Timeline" in page and "+10m · email → Ben" in page and "now · browser → Ben" in page
    bad = console.post("/console/explain", {"event": '{"id": "x", "type": "ticket.craeted"}'})
    assert bad.status_code == 422 and "ticket.created" in bad.text


def test_activity_finds_events_by_id_type_subject_receiver_and_time_and_shows_the_timeline(
        acme, console):
    published(acme, ticket_event("act-1"))
    published(acme, ticket_event("act-2", subject="T-2", etype="ticket.status_changed"))
    for params, found, missing in (
            ({"event_id": "act-"}, ["act-1", "act-2"], []),
            ({"type": "ticket.status_changed"}, ["act-2"], ["act-1"]),
            ({"subject": "T-1"}, ["act-1"], ["act-2"]),
            ({"receiver": "cleo"}, ["act-1"], ["act-2"]),
            ({"since": "2999-01-01T00:00"}, [], ["act-1", "act-2"])):
        page = console.page("/console/activity", params=params)
        assert all(f">{e}</a>" in page for e in found), (params, found)
        assert not any(f">{e}</a>" in page for e in missing), (params, missing)
    event = text_of(console.page("/console/activity/act-1"))
    assert "ticket-notification-receivers" in event and "subject-creator" in event
    assert "email → employee ana · sent" in event and "pending planned" in event
    assert "sent" in event.split("email → employee ana")[1]


def test_failures_are_grouped_with_the_providers_answer_and_a_retry_really_re_sends(
        acme, console, sink):
    sink.reject("acme-cleo@acme.example", 550, "5.1.1 cleo left the company")
    sink.reject("acme-ana@acme.example", 550, "5.1.1 cleo left the company")
    activity = published(acme, ticket_event("fail-1"))
    failed = {d["receiver"]["id"]: d for d in activity["deliveries"]
              if d["status"] == "failed" and d["channel"] == "email"}
    assert set(failed) == {"ana", "cleo"}
    page = text_of(console.page("/console/failures"))
    assert "email · 550 5.1.1 cleo left the company" in page or "cleo left the company" in page
    assert "fail-1" in page
    sink.accept_all()
    sink.clear()
    answer = console.post("/console/failures/retry", {"what": "ids", "id": failed["cleo"]["id"]})
    assert answer.status_code == 303
    assert "redriven=0,1" in answer.headers["location"]
    [mail] = sink.wait_for(1, timeout=30)
    assert mail["To"] == "acme-cleo@acme.example"
    done = text_of(console.page(answer.headers["location"]))
    assert "Re-driven: 0 event(s), 1 delivery(ies)." in done
    wait_until(lambda: {d["receiver"]["id"]: d["status"] for d in acme.client.activity(
        "fail-1")["deliveries"] if d["channel"] == "email"}.get("cleo") == "sent", 30,
        what="cleo's mail sent")
    history = [h["detail"] for d in acme.client.activity("fail-1")["deliveries"]
               if d["id"] == failed["cleo"]["id"] for h in d["history"]]
    assert "re-driven by an operator" in history
    everything = console.post("/console/failures/retry", {"what": "all"})
    assert everything.status_code == 303
    wait_until(lambda: "acme-ana@acme.example" in [m["To"] for m in sink.messages], 30,
               what="ana's mail re-sent")


def test_another_tenants_event_and_delivery_are_not_found(acme, globex, console, sink):
    sink.reject("globex-ana@acme.example")
    theirs = published(globex, ticket_event("theirs-1"))
    sink.accept_all()
    [failed] = [d for d in theirs["deliveries"]
                if d["status"] == "failed" and d["channel"] == "email"]
    assert console.get("/console/activity/theirs-1").status_code == 404
    assert "theirs-1" not in console.page("/console/activity")
    answer = console.post("/console/failures/retry", {"what": "ids", "id": failed["id"]})
    assert answer.status_code == 404 and f"delivery {failed['id']} not found" in answer.text
    everything = console.post("/console/failures/retry", {"what": "all"})
    assert everything.status_code == 303
    assert [d["status"] for d in globex.client.activity("theirs-1")["deliveries"]
            if d["id"] == failed["id"]] == ["failed"]


def test_health_shows_this_tenants_deliveries_per_minute_queues_and_timers(herald, acme,
                                                                           console):
    published(acme, ticket_event("health-1"))
    answer = httpx.get(f"{herald.url}/console/health",
                       headers={"Authorization": f"Bearer {acme.console_key}"})
    data = answer.json()
    assert sum(data["per_minute"]["email"]["sent"]) >= 2
    assert set(data["queues"]) == {"herald.route", "herald.route.bulk", "herald.browser",
                                   "herald.push", "herald.email"}
    assert data["timers"]["due"] == 0 and data["failure_rate"]["email"]["sent"] >= 2
    page = console.page("/console/health")
    assert '<svg width="300"' in page and 'id="chart-email"' in page
    assert "sent" in text_of(page).split("email:")[1]


def test_the_console_speaks_german_by_accept_language_and_by_the_switch(herald, acme):
    german = Console(herald.url, acme.console_key, lang="de")
    page = text_of(german.page("/console/failures"))
    assert "Fehler" in page and "Abmelden" in page
    english = german.get("/console/health?lang=en")
    assert "Sign out" in english.text and "herald_console_lang=en" in english.headers["set-cookie"]
    german.close()
