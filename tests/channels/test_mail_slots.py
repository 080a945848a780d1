"""A batch's mail bodies, rendered once per group with the receivers' own values put in
after, are exactly what rendering each mail alone gives; a template that does more with
a receiver's value than print it or test its truth is rendered per mail."""

from __future__ import annotations

from dataclasses import replace

import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment

from channels import mail_slots
from tests.channels.test_templates_golden import (
    EVENT_TYPES,
    EXPIRES,
    LANGUAGES,
    SCENARIOS,
    SPECIAL,
    job,
)

# (receiver name, unsubscribe link, content link): the values a batch's mails differ in
RECEIVERS = [("Sam Weber", "https://herald.example/u/hu_a", "https://app.example/t/s-42"),
             ("", "https://herald.example/u/hu_b?x=1&y=<2>", "https://app.example/t?a=1&b=2"),
             (SPECIAL, "https://herald.example/u/hu_c", ""),
             ("Zoë Ünal", "", "https://app.example/t/s-42?access_token=ac_x")]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("etype", [*EVENT_TYPES, "unknown.event", "digest"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_batch_renders_every_mail_exactly_as_rendering_it_alone(renderer, catalogue, lang,
                                                                  etype, scenario):
    base = job("ticket.created" if etype == "digest" else etype, lang, scenario, catalogue)
    rendered: dict[str, tuple[str, str]] = {}
    for name, unsubscribe, link in RECEIVERS:
        one = replace(base, content={**base.content, "name": name})
        ctx = renderer.context(one, link, EXPIRES if scenario == "code_user" else None,
                               unsubscribe, "Acme Service")
        alone = (renderer.template(lang, etype, "txt").render(ctx),
                 renderer.template(lang, etype, "html").render(ctx))
        assert renderer.bodies(lang, etype, ctx, rendered) == alone


def test_a_batch_of_one_event_renders_its_bodies_once(renderer, catalogue):
    base = job("ticket.created", "en", "employee", catalogue)
    rendered: dict[str, tuple[str, str]] = {}
    for name, unsubscribe, _ in RECEIVERS[:1] * 3:
        one = replace(base, content={**base.content, "name": name + "x"})
        ctx = renderer.context(one, "https://app.example/t", None, unsubscribe, "Acme")
        renderer.bodies("en", "ticket.created", ctx, rendered)
    assert len(rendered) == 1


@pytest.mark.parametrize("source", [
    "Hello {{ receiver.name }}, {% if link %}<a href='{{ link }}'>open</a>{% endif %}",
    "{% if receiver and receiver.name %}{{ receiver.name }}{% endif %}{{ receiver.kind }}",
    "{% if not unsubscribe_url %}none{% else %}{{ unsubscribe_url }}{% endif %}",
    "{% for row in data.rows %}{{ row }} {{ link }}{% endfor %}",
])
def test_a_template_that_prints_or_tests_the_values_is_rendered_once(source):
    assert mail_slots.prints_slots_plainly(_env({"t.html": source}), "t.html")


@pytest.mark.parametrize("source", [
    "{{ receiver.name|upper }}",
    "{{ link|length }}",
    "{% if receiver.name == 'Bob' %}hi Bob{% endif %}",
    "{% if receiver.name|length > 20 %}long{% endif %}",
    "{% set greeting %}Hello {{ receiver.name }}{% endset %}{{ greeting|upper }}",
    "{% set url = unsubscribe_url %}{{ url }}",
    "{{ receiver['name'] }}",
    "{{ receiver }}",
    "{{ link if link else 'none' }}",
    "{% filter upper %}{{ receiver.name }}{% endfilter %}",
    "{% include 'other.html' %}",
    "{% extends 'parent.html' %}",
])
def test_a_template_that_does_more_with_the_values_is_rendered_per_mail(source):
    env = _env({"t.html": source, "other.html": "{{ receiver.name }}",
                "parent.html": "{{ receiver.name|lower }}"})
    assert not mail_slots.prints_slots_plainly(env, "t.html")


def _env(templates: dict[str, str]) -> SandboxedEnvironment:
    return SandboxedEnvironment(loader=jinja2.DictLoader(templates), autoescape=True)
