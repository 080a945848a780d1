"""Every notification text and email, rendered for every event type, language and a set of
representative receivers and events, is exactly the stored golden copy.

A refactor of ``channels/templates`` must keep these bytes. When a wording or layout change
is intended, regenerate the copies and review their diff:

    HERALD_UPDATE_GOLDEN=1 python -m pytest tests/channels/test_templates_golden.py
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from channels.mail_content import MailRenderer
from router.core.enums import Channel
from router.core.templating import TEMPLATES, environment
from router.delivery.contracts import Job
from router.routing.texts import TextCatalogue

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("HERALD_UPDATE_GOLDEN") == "1"
LANGUAGES = ("en", "de")
OCCURRED = "2026-11-30T14:05:00+01:00"
EXPIRES = datetime(2026, 12, 14, 9, 30, tzinfo=UTC)
EVENT_TYPES = sorted(yaml.safe_load((TEMPLATES / "texts" / "en.yaml").read_text(encoding="utf-8")))
SPECIAL = '<b>&"\'</b>'

FULL_DATA = {
    "title": "Lift 3 stuck between floors", "message": "The lift stopped at 2nd floor.\n\n"
    "  Doors won't open.\nPlease hurry!  ", "asset_name": "Lift 3 (north wing)",
    "assignee_name": "Kim Lee", "code_label": "Entrance B", "device_name": "Gateway 7",
    "offer_amount": "1,250.00 EUR", "previous_status": "in_progress", "status": "closed",
    "reason": "Fixed on site", "scheduled_at": "2026-12-01 10:00"}

# name -> (receiver kind, receiver name, actor, data, with link/tenant/unsubscribe/occurred)
SCENARIOS: dict[str, tuple[str, str, Any, dict[str, Any], bool]] = {
    "employee": ("employee", "Sam Weber", {"id": "u-9", "name": "Ada Müller"}, FULL_DATA, True),
    "code_user": ("code_user", "", {"id": "u-9", "name": "Ada Müller"},
                  {"title": "Broken door", "asset_name": "Door 1"}, True),
    "no_actor": ("employee", "", None, {}, False),
    "long_actor": ("customer", "  Jo  ", {"id": "u-2", "name": "  Maximiliane \t Alexandra\n"
                                          "von Hohenzollern-Sigmaringen der Zweite  "},
                   {"offer_amount": 0, "previous_status": "escalated_to_vendor",
                    "status": "waiting", "device_name": "", "asset_name": "Pump\t 4",
                    "reason": "Out of stock!", "message": "Short."}, True),
    "special": ("employee", SPECIAL, {"id": "u-1", "name": SPECIAL},
                {key: f"{SPECIAL} {key}" for key in FULL_DATA}, True),
}


def event(etype: str, scenario: str) -> dict[str, Any]:
    _, _, actor, data, full = SCENARIOS[scenario]
    number = SPECIAL if scenario == "special" else "#42"
    return {"id": "e-1", "type": etype, "actor": actor, "data": data,
            "subject": {"kind": etype.split(".")[0], "id": "s-42", "number": number},
            "occurred_at": OCCURRED if full else None}


def job(etype: str, lang: str, scenario: str, catalogue: TextCatalogue) -> Job:
    kind, name, _, _, _ = SCENARIOS[scenario]
    doc = event(etype, scenario)
    texts = catalogue.render(doc, lang, "Fallback title")
    return Job(id=7, tenant="t-1", channel=Channel.EMAIL, receiver_kind=kind, receiver_id="r-1",
               strategy="all", attempts=1, event=doc,
               content={"language": lang, "title": texts.title, "message": texts.message,
                        "email": "r@example.com", "name": name})


def mail_context(renderer: MailRenderer, etype: str, lang: str, scenario: str,
                 catalogue: TextCatalogue) -> dict[str, Any]:
    full = SCENARIOS[scenario][4]
    special = scenario == "special"
    link = "https://app.example/t/s-42?a=1&b=<2>" if special else "https://app.example/t/s-42"
    return renderer.context(
        job(etype, lang, scenario, catalogue), link if full else "",
        EXPIRES if scenario == "code_user" else None,
        "https://herald.example/u/tok?x=1&y=2" if full else "",
        (SPECIAL if special else "Acme Service") if full else "")


def sections(parts: dict[str, str]) -> str:
    return "".join(f"===== {name} =====\n{text}\n" for name, text in parts.items())


def check(path: Path, rendered: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendered.encode("utf-8"))
    assert path.exists(), f"no golden copy {path}: run with HERALD_UPDATE_GOLDEN=1"
    assert rendered == path.read_bytes().decode("utf-8"), f"{path} differs"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("etype", [*EVENT_TYPES, "unknown.event"])
@pytest.mark.parametrize("ext", ["html", "txt"])
def test_every_email_renders_exactly_as_its_golden_copy(renderer, catalogue, lang, etype, ext):
    rendered = sections({
        scenario: renderer.template(lang, etype, ext).render(
            mail_context(renderer, etype, lang, scenario, catalogue))
        for scenario in SCENARIOS})
    check(GOLDEN / "email" / lang / f"{etype}.{ext}", rendered)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_title_and_message_renders_exactly_as_its_golden_copy(catalogue, lang):
    rendered = {}
    for etype in [*EVENT_TYPES, "unknown.event"]:
        for scenario in SCENARIOS:
            texts = catalogue.render(event(etype, scenario), lang, "Fallback title")
            rendered[f"{etype} / {scenario}"] = {"title": texts.title, "message": texts.message}
    check(GOLDEN / "texts" / f"{lang}.json",
          json.dumps(rendered, ensure_ascii=False, indent=1) + "\n")


def test_the_golden_copies_escape_html_in_emails_and_keep_it_in_texts():
    html = (GOLDEN / "email" / "en" / "ticket.created.html").read_text(encoding="utf-8")
    text = (GOLDEN / "email" / "en" / "ticket.created.txt").read_text(encoding="utf-8")
    assert "&lt;b&gt;&amp;&#34;&#39;&lt;/b&gt;" in html and SPECIAL not in html
    assert SPECIAL in text and "Ada Müller opened ticket #42" in text


ODD_ACTORS = [None, {}, {"name": None}, {"name": ""}, {"name": 42}, "bob", {"name": " Ada \t\n Lovelace "},
              {"name": "Maximiliane Alexandra von Hohenzollern"}, {"name": SPECIAL}, {"id": "u-1"}]
OLD_WHO = ("{{ (((actor.name if actor else None) or '')|string).split()|join(' ')"
           "|truncate(32, true, '…', 0) }}")
OLD_CLIP = "{{ (value|string).split()|join(' ')|truncate(12, true, '…', 0) }}"


@pytest.mark.parametrize("autoescape", [False, True])
@pytest.mark.parametrize("actor", ODD_ACTORS)
def test_actor_name_says_what_the_expression_it_replaced_said(actor, autoescape):
    env = environment(autoescape=autoescape)
    assert (env.from_string("{{ actor|actor_name }}").render(actor=actor)
            == env.from_string(OLD_WHO).render(actor=actor))


@pytest.mark.parametrize("value", [0, 1250.5, "", " a  b\tc\n", "twelve chars", "thirteen char", SPECIAL * 3])
def test_clip_says_what_the_expression_it_replaced_said(value):
    env = environment()
    assert env.from_string("{{ value|clip(12) }}").render(value=value) == env.from_string(OLD_CLIP).render(
        value=value)
