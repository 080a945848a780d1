"""Event type titles in other languages (the catalogue's `titles` section), and whether a
rule's `when` can hold for an event type before any event of it exists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.core.errors import RuleFileError
from router.ruleset.conditions import All, AnyOf, Cmp, Exists, In, Not, could_hold, evaluate
from router.ruleset.rulefile import load_ruleset
from tests.conftest import RULES


def problems_of(tmp_path: Path, body: str) -> list[str]:
    shutil.copy(Path(RULES) / "catalogue.yaml", tmp_path / "catalogue.yaml")
    (tmp_path / "titles.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_ruleset(tmp_path)
    return [p.located() for p in caught.value.problems]


def test_every_shipped_type_has_a_german_title_and_other_languages_fall_back(ruleset):
    assert set(ruleset.titles["de"]) == set(ruleset.events)
    assert ruleset.title("ticket.created", "de") == "Neues Ticket"
    assert ruleset.title("ticket.created", "de-AT") == ruleset.title("ticket.created", "de_CH") \
        == "Neues Ticket"
    assert ruleset.title("ticket.created", "fr") == ruleset.title("ticket.created") == "New ticket"
    assert ruleset.title("invoice.paid", "de") == "invoice.paid"


def test_a_title_for_an_unknown_type_is_refused_where_it_stands_with_a_guess(tmp_path):
    [problem] = problems_of(tmp_path, "titles:\n  fr:\n    ticket.creatd: Nouveau ticket\n")
    assert problem.endswith("titles.yaml:3:5: unknown event type 'ticket.creatd'; "
                            "did you mean 'ticket.created'?")


@pytest.mark.parametrize("body, says", [
    ("titles:\n  de:\n    ticket.created: Noch ein Ticket\n", "the de title of 'ticket.created' "
                                                               "is already given"),
    ("titles:\n  french:\n    ticket.created: Nouveau\n", "not a language tag"),
    ("titles:\n  fr:\n    ticket.created: ''\n", "a title is a non-empty string"),
    ("titles:\n  fr: [ticket.created]\n", "map each event type to its title"),
    ("titles: [fr]\n", "'titles' maps a language"),
    ("title:\n  fr: {}\n", "unknown top-level key 'title' (allowed: events, rules, defaults, "
                          "titles)"),
])
def test_a_broken_titles_section_is_refused_saying_what_is_wrong(tmp_path, body, says):
    [problem] = problems_of(tmp_path, body)
    assert says in problem, problem


TICKET = {"type": "ticket.created", "subject": {"kind": "ticket"}}


@pytest.mark.parametrize("cond, holds", [
    (Cmp("type", "prefix", "ticket."), True),
    (Cmp("type", "prefix", "code."), False),
    (In("subject.kind", ("ticket", "task")), True),
    (Exists("subject.customer_org_id", True), True),  # unknown before an event: it may
    (All((Cmp("type", "prefix", "ticket."), Cmp("data.priority", "gt", 3))), True),
    (All((Cmp("type", "prefix", "code."), Cmp("data.priority", "gt", 3))), False),
    (AnyOf((Cmp("type", "eq", "code.paired"), Cmp("subject.kind", "eq", "ticket"))), True),
    (Not(In("subject.kind", ("ticket", "video_session"))), False),
    (Not(Cmp("data.x", "eq", 5)), True),
])
def test_a_condition_can_hold_unless_the_type_or_subject_kind_rule_it_out(cond, holds):
    assert could_hold(cond, TICKET) is holds


FIELDS = st.sampled_from(["type", "subject.kind", "data.x"])
LEAVES = st.one_of(
    st.builds(Cmp, FIELDS, st.sampled_from(["eq", "neq", "prefix"]),
              st.sampled_from(["ticket.created", "ticket.", "ticket", "code", "1"])),
    st.builds(In, FIELDS, st.just(("ticket", "ticket.created", "1")), st.booleans()),
    st.builds(Exists, FIELDS, st.booleans()))
CONDS = st.recursive(LEAVES, lambda inner: st.one_of(
    st.builds(All, st.lists(inner, max_size=3).map(tuple)),
    st.builds(AnyOf, st.lists(inner, max_size=3).map(tuple)), st.builds(Not, inner)),
    max_leaves=8)


@given(CONDS, st.sampled_from([None, "1", "ticket", "ticket.created"]))
def test_whatever_an_event_of_the_type_holds_could_hold_says_it_may(cond, x):
    doc = {**TICKET, "data": {} if x is None else {"x": x}}
    if evaluate(cond, doc):
        assert could_hold(cond, TICKET)
