"""The rule compiler: parsing, error reporting, durable_rules agreement, threads."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.core.enums import SubjectKind
from router.core.errors import RuleFileError
from router.ruleset.conditions import All, AnyOf, Cmp, Exists, In, Not, evaluate
from router.ruleset.engine import RuleEngine
from router.ruleset.rulefile import EventSpec, Rule, RuleSet, Selector, load_ruleset
from tests.conftest import RULES

CATALOGUE = Path(RULES) / "catalogue.yaml"


def write_rules(tmp_path: Path, body: str) -> Path:
    shutil.copy(CATALOGUE, tmp_path / "catalogue.yaml")
    (tmp_path / "extra.yaml").write_text(body, encoding="utf-8")
    return tmp_path


def problems_of(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_ruleset(write_rules(tmp_path, body))
    return [p.located() for p in caught.value.problems]


def test_shipped_rules_load_and_every_rule_fires_for_its_events(engine):
    fired = engine.match({"type": "ticket.offer_created", "subject": {"kind": "ticket"}})
    assert fired == ["ticket-notification-receivers", "ticket-offer-receivers",
                     "service-case-participants", "subject-creator", "code-user-subscribers"]


def test_every_matching_rule_fires_not_only_the_first(tmp_path):
    rules = "\n".join(f"  - {{id: r{i}, when: {{type: ticket.created}}, receivers: [creator]}}"
                      for i in range(5))
    engine = RuleEngine(load_ruleset(write_rules(tmp_path, "rules:\n" + rules)))
    assert engine.match({"type": "ticket.created"}) == [f"r{i}" for i in range(5)]
    assert engine.match({"type": "ticket.created"}) == [f"r{i}" for i in range(5)]


def test_operators_compile_and_match(tmp_path):
    body = """rules:
  - {id: pre, when: {type: {prefix: video_session.}}, receivers: [creator]}
  - {id: notin, when: {subject.kind: {not_in: [ticket, task]}}, receivers: [creator]}
  - {id: num, when: {data.priority: {gte: 3, lt: 9}}, receivers: [creator]}
  - {id: nested, when: {any: [{data.vip: true}, {not: {data.region: {in: [eu, us]}}}]},
     receivers: [creator]}
  - {id: absent, when: {type: {exists: true}, data.owner: {exists: false}}, receivers: [creator]}
"""
    engine = RuleEngine(load_ruleset(write_rules(tmp_path, body)))
    doc = {"type": "video_session.requested", "subject": {"kind": "video_session"},
           "data": {"priority": 5, "region": "eu"}}
    assert engine.match(doc) == ["pre", "notin", "num", "absent"]
    doc["data"].update(priority=9, region="apac", owner="x")
    assert engine.match(doc) == ["pre", "notin", "nested"]


@pytest.mark.parametrize("body, expected", [
    ("rules:\n  - {id: a, when: {subjet.kind: ticket}, receivers: [creator]}\n",
     "extra.yaml:2:20: unknown field path 'subjet.kind'"),
    ("rules:\n  - {id: a, when: {type: {regex: x}}, receivers: [creator]}\n",
     "extra.yaml:2:27: unknown operator 'regex'"),
    ("rules:\n  - {id: a, when: {type: ticket.create}, receivers: [creator]}\n",
     "extra.yaml:2:20: unknown event type 'ticket.create'; did you mean 'ticket.created'?"),
    ("rules:\n  - {id: a, when: {type: ticket.created}, receivers: [creater]}\n",
     "extra.yaml:2:55: unknown selector 'creater'"),
    ("rules:\n  - {id: x, when: {type: ticket.created}, receivers: [creator]}\n"
     "  - {id: x, when: {type: ticket.created}, receivers: [creator]}\n",
     "extra.yaml:3:6: duplicate rule id 'x' (first defined at"),
    ("rules:\n  - {id: a, when: {type: ticket.created}, receivers: [creator]\n",
     "extra.yaml:3:1: YAML syntax"),
    ("rules:\n  - {id: a, when: {type: ticket.created}, receivers: [creator], id: b}\n",
     "duplicate key 'id'"),
    ("rules:\n  - {id: a, when: {data.n: {lt: high}}, receivers: [creator]}\n",
     "'lt' compares numbers"),
    ("rules:\n  - {id: a, when: {type: !!python/object:os.system x}, receivers: [creator]}\n",
     "extra.yaml:2:26: YAML: could not determine a constructor"),
])
def test_broken_rule_files_report_file_line_and_what_is_wrong(tmp_path, body, expected):
    found = problems_of(tmp_path, body)
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once(tmp_path):
    body = ("rules:\n  - {id: a, when: {subjet.kind: x}, receivers: [creater]}\n"
            "  - {id: b, when: {type: nope.nope}, receivers: [{role: admin}], channels: [fax]}\n")
    assert len(problems_of(tmp_path, body)) == 4


# ----------------------------------------------------------------- property: engine == Python

FIELDS = {
    "type": st.sampled_from(["ticket.created", "ticket.assigned", "code.paired", "task.created"]),
    "subject.kind": st.sampled_from(["ticket", "code", "task", "video_session"]),
    "data.priority": st.integers(-3, 12),
    "data.score": st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 2)),
    "data.region": st.sampled_from(["eu", "us", "apac", "eu-west_1"]),
}
VALUES = {k: v for k, v in FIELDS.items()}


def _atom() -> st.SearchStrategy:
    text_field = st.sampled_from(["type", "subject.kind", "data.region"])
    num_field = st.sampled_from(["data.priority", "data.score"])
    any_field = st.sampled_from(sorted(FIELDS))
    return st.one_of(
        any_field.flatmap(lambda f: VALUES[f].map(lambda v: Cmp(f, "eq", v))),
        any_field.flatmap(lambda f: VALUES[f].map(lambda v: Cmp(f, "neq", v))),
        any_field.flatmap(lambda f: st.lists(VALUES[f], min_size=1, max_size=3).flatmap(
            lambda vs: st.booleans().map(lambda neg: In(f, tuple(vs), neg)))),
        text_field.flatmap(lambda f: st.sampled_from(["ticket.", "t", "code.", "eu-", "vid", "e"])
                           .map(lambda p: Cmp(f, "prefix", p))),
        num_field.flatmap(lambda f: st.tuples(st.sampled_from(["lt", "lte", "gt", "gte"]),
                                              st.integers(-4, 12)).map(lambda t: Cmp(f, *t))),
        any_field.flatmap(lambda f: st.booleans().map(lambda b: Exists(f, b))),
    )


CONDS = st.recursive(_atom(), lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3).map(lambda xs: All(tuple(xs))),
    st.lists(inner, min_size=1, max_size=3).map(lambda xs: AnyOf(tuple(xs))),
    inner.map(Not)), max_leaves=8)


def _doc(values: dict) -> dict:
    doc: dict = {"subject": {}, "data": {}}
    for path, value in values.items():
        head, _, tail = path.partition(".")
        if tail:
            doc[head][tail] = value
        else:
            doc[head] = value
    return doc


EVENTS = st.fixed_dictionaries({}, optional=FIELDS).map(_doc)
CATALOGUE_EVENTS = {t: EventSpec(t, SubjectKind.TICKET, t) for t in
                    ["ticket.created", "ticket.assigned", "code.paired", "task.created"]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conds=st.lists(CONDS, min_size=1, max_size=6), docs=st.lists(EVENTS, min_size=1,
                                                                    max_size=8))
def test_durable_rules_agrees_with_plain_python_on_random_events(conds, docs):
    rules = [Rule(f"r{i}", "", c, (Selector("creator"),)) for i, c in enumerate(conds)]
    engine = RuleEngine(RuleSet(events=CATALOGUE_EVENTS, rules=rules))
    for doc in docs:
        expected = [r.id for r in rules if evaluate(r.when, doc)]
        assert engine.match(doc) == expected, (doc, conds)


# ----------------------------------------------------------------- threads


def test_many_threads_routing_at_once_get_the_same_matches_as_one(engine):
    docs = [{"type": t, "subject": {"kind": t.split(".")[0], "customer_org_id": org}}
            for t in ["ticket.created", "code.paired", "video_session.direct_call",
                      "task.assigned", "device.created"] for org in (None, "o1")]
    for doc in docs:
        doc["subject"] = {k: v for k, v in doc["subject"].items() if v is not None}
    expected = [engine.match(d) for d in docs]
    results: list[list[list[str]]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append([engine.match(d) for _ in range(40) for d in docs][-len(docs):])
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [expected] * 8


def test_hot_swap_replaces_the_rules_and_a_broken_edit_keeps_the_old_set(tmp_path):
    rules_dir = write_rules(tmp_path, "rules:\n  - {id: a, when: {type: ticket.created}, "
                                      "receivers: [creator]}\n")
    engine = RuleEngine(load_ruleset(rules_dir))
    (rules_dir / "extra.yaml").write_text("rules:\n  - {id: b, when: {type: ticket.created}, "
                                          "receivers: [creator]}\n")
    engine.swap(load_ruleset(rules_dir))
    assert engine.match({"type": "ticket.created"}) == ["b"]
    (rules_dir / "extra.yaml").write_text("rules: [\n")
    with pytest.raises(RuleFileError):
        engine.swap(load_ruleset(rules_dir))
    assert engine.match({"type": "ticket.created"}) == ["b"]


def test_two_engines_in_one_process_keep_their_own_rules_and_close_alone(tmp_path):
    """Explain with an older version runs a second engine beside the one routing: each
    owns its host and sets, and closing one leaves the other matching."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir(), b_dir.mkdir()
    a = RuleEngine(load_ruleset(write_rules(a_dir, "rules:\n  - {id: a, when: {type: "
                                                   "ticket.created}, receivers: [creator]}\n")))
    b = RuleEngine(load_ruleset(write_rules(b_dir, "rules:\n  - {id: b, when: {type: "
                                                   "ticket.created}, receivers: [creator]}\n")))
    doc = {"type": "ticket.created"}
    errors: list[BaseException] = []

    def route(engine: RuleEngine, expected: list[str]) -> None:
        try:
            for _ in range(200):
                assert engine.match(doc) == expected
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=route, args=(a, ["a"])),
               threading.Thread(target=route, args=(b, ["b"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    a.close()
    assert b.match(doc) == ["b"]
    assert not hasattr(RuleEngine, "_host") and not hasattr(RuleEngine, "_lock")
