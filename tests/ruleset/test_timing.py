"""Time steps in the event catalogue: the duration parser, validation with positions,
and what the planner says about them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from router.core.enums import Channel, TimeStepKind
from router.core.errors import RuleFileError
from router.ruleset.rulefile import load_ruleset
from router.ruleset.timing import TimeStep, format_duration, parse_duration
from tests.conftest import RULES

TIMED = """events:
  ticket.closed: {subject: ticket, title: Ticket closed}
  ticket.reminder:
    subject: ticket
    title: Reminder
    delay: {channels: [email], after: 15m, cancel_on: [ticket.closed]}
    escalate: {after: 2h, to: [push]}
"""


def rules_with(tmp_path: Path, body: str) -> Path:
    shutil.copy(Path(RULES) / "catalogue.yaml", tmp_path / "catalogue.yaml")
    shutil.copy(Path(RULES) / "platform.yaml", tmp_path / "platform.yaml")
    (tmp_path / "timed.yaml").write_text(body, encoding="utf-8")
    return tmp_path


def problems_of(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_ruleset(rules_with(tmp_path, body))
    return [p.located() for p in caught.value.problems]


@pytest.mark.parametrize(("raw", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200),
                                              ("90s", 90)])
def test_durations_are_seconds_minutes_or_hours(raw, seconds):
    assert parse_duration(raw) == (seconds, "")


@pytest.mark.parametrize("raw", ["15", "15 m", "1d", "-5m", "0s", "1.5h", 15, None, "200h"])
def test_anything_else_is_not_a_duration_and_says_what_is(raw):
    seconds, why = parse_duration(raw)
    assert seconds is None
    assert "30s, 15m, 2h" in why or "at most 7 days" in why


def test_durations_are_written_back_in_the_largest_whole_unit():
    assert [format_duration(s) for s in (30, 90, 900, 7200, 5400)] == ["30s", "90s", "15m", "2h",
                                                                        "90m"]


def test_a_catalogue_entry_carries_its_delay_and_escalation(tmp_path):
    ruleset = load_ruleset(rules_with(tmp_path, TIMED))
    assert ruleset.timing("ticket.reminder") == (
        TimeStep(TimeStepKind.DELAY, 900, (Channel.EMAIL,), ("ticket.closed",)),
        TimeStep(TimeStepKind.ESCALATE, 7200, (Channel.PUSH,)))
    assert ruleset.cancels("ticket.closed") == ["ticket.reminder"]
    assert ruleset.cancels("ticket.created") == []


def test_the_shipped_catalogue_escalates_video_requests_to_email_after_ten_minutes(ruleset):
    [step] = ruleset.timing("video_session.requested")
    assert step.describe() == "email escalated after 10m unless read"


def test_a_bad_duration_is_reported_at_its_line_and_column(tmp_path):
    body = TIMED.replace("after: 15m", "after: 15min")
    [problem] = problems_of(tmp_path, body)
    assert problem.startswith(f"{tmp_path}/timed.yaml:6:")
    assert "'15min'" in problem and "15m" in problem


def test_an_unknown_cancelling_type_gets_a_did_you_mean(tmp_path):
    [problem] = problems_of(tmp_path, TIMED.replace("cancel_on: [ticket.closed]",
                                                    "cancel_on: [ticket.closd]"))
    assert problem.startswith(f"{tmp_path}/timed.yaml:6:")
    assert "unknown event type 'ticket.closd'; did you mean 'ticket.closed'?" in problem


def test_the_browser_step_cannot_wait_and_unknown_keys_are_named(tmp_path):
    body = TIMED.replace("to: [push]", "to: [browser]").replace("after: 15m", "after: 15m, "
                                                                "until: 3h")
    found = problems_of(tmp_path, body)
    assert any(":7:" in p and "push, email" in p and "the feed item" in p for p in found)
    assert any("unknown key 'until' in 'delay'" in p for p in found)


def test_one_channel_cannot_be_both_delayed_and_escalated(tmp_path):
    [problem] = problems_of(tmp_path, TIMED.replace("to: [push]", "to: [email]"))
    assert "email is both delayed and escalated" in problem
