"""`digest` and `throttle` in the event catalogue: parsed, described, and refused with
file:line:col where they cannot work."""

from __future__ import annotations

import pytest

from router.core.enums import Channel
from router.ruleset.rulefile import load_ruleset
from router.ruleset.timing import Fold
from tests.ruleset.test_timing import problems_of, rules_with

FOLDED = """events:
  ticket.note:
    subject: ticket
    title: Note
    digest: {window: 10m, key: subject, channels: [email]}
    throttle: {max: 3, per: 1h, key: receiver, channels: [push]}
"""


def test_a_catalogue_entry_carries_its_digest_and_throttle(tmp_path):
    folds = load_ruleset(rules_with(tmp_path, FOLDED)).folds("ticket.note")
    assert folds == (Fold("digest", 600, "subject", (Channel.EMAIL,)),
                     Fold("throttle", 3600, "receiver", (Channel.PUSH,), 3))
    assert [f.describe() for f in folds] == [
        "email gathered in a 10m digest per subject",
        "push throttled to 3 per 1h per receiver, the rest in one digest"]


def test_the_key_gathers_by_subject_type_or_receiver():
    doc = {"type": "ticket.note", "subject": {"kind": "ticket", "id": "T-1"}}
    keys = [Fold("digest", 60, by, (Channel.EMAIL,)).key_of(doc)
            for by in ("subject", "type", "receiver")]
    assert keys == ["ticket:T-1", "ticket.note", "*"]


@pytest.mark.parametrize(("change", "line", "says"), [
    (("window: 10m", "window: 10 minutes"), 5, "a duration is a whole number"),
    (("key: subject", "key: ticket"), 5, "key is one of subject, type, receiver"),
    (("max: 3", "max: 0"), 6, "max is a whole number from 1 to 1000"),
    (("channels: [email]", "channels: [browser]"), 5, "the feed item, written at once"),
    (("window: 10m,", "window: 10m, every: 2h,"), 5, "unknown key 'every' in 'digest'"),
])
def test_a_broken_fold_is_reported_at_its_line(tmp_path, change, line, says):
    found = problems_of(tmp_path, FOLDED.replace(*change))
    assert any(p.startswith(f"{tmp_path}/timed.yaml:{line}:") and says in p for p in found), found


def test_a_channel_gets_one_of_delay_escalate_digest_and_throttle(tmp_path):
    [problem] = problems_of(tmp_path, FOLDED.replace("channels: [push]", "channels: [email]"))
    assert "email has more than one of delay, escalate, digest and throttle" in problem


def test_a_critical_type_cannot_be_digested_or_throttled(tmp_path):
    found = problems_of(tmp_path, FOLDED.replace("title: Note", "title: Note\n    critical: true"))
    assert sum("a critical event type goes at once" in p for p in found) == 2, found
