"""Receiver settings (DESIGN §2): what a settings document may say, and which row decides
the channels of an event type (the user's row for it, their `all` row, then the rule file)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from router.core.enums import Channel, Origin, Strategy
from router.directory import directory as d
from router.directory.settings import SettingsIn, check_row_keys, effective_prefs
from tests import factories as f


def refusal(document: dict) -> tuple[tuple, str]:
    """Where (the field path) and why a settings document is refused."""
    with pytest.raises(ValidationError) as refused:
        SettingsIn.model_validate(document)
    [error] = refused.value.errors()
    return error["loc"], error["msg"]


def test_every_switch_is_on_until_set_and_stored_rows_keep_the_users_channel_order(session, tenant):
    f.employee(session, tenant, "ann")
    assert d.get_settings(session, tenant, "ann") == SettingsIn(
        push=True, email=True, customer_notifications=True, advanced={})
    f.settings(session, tenant, "ann", email=False, advanced={
        "ticket.created": {"channels": ["email", "browser"], "strategy": "first_success"}})
    back = d.get_settings(session, tenant, "ann")
    assert back.email is False and back.push is True
    assert back.advanced["ticket.created"].channels == [Channel.EMAIL, Channel.BROWSER]
    assert back.advanced["ticket.created"].origin == [Origin.OTHERS]  # the default filled in


@pytest.mark.parametrize("row, field, says", [
    ({"channels": ["push", "push"]}, "channels", ["twice"]),
    ({"channels": ["browser", "sms"]}, "channels", [f"'{c}'" for c in Channel]),
    ({"origin": ["everyone"]}, "origin", [f"'{o}'" for o in Origin]),
    ({"strategy": "round_robin"}, "strategy", [f"'{s}'" for s in Strategy]),
])
def test_a_bad_row_is_refused_at_its_path_saying_what_is_allowed(row, field, says):
    loc, msg = refusal({"advanced": {"ticket.created": row}})
    assert loc[:3] == ("advanced", "ticket.created", field)
    assert all(word in msg for word in says), msg


def test_switches_are_booleans_and_unknown_keys_are_refused():
    assert refusal({"email": "no"})[0] == ("email",)
    assert refusal({"sms": False})[0] == ("sms",)
    assert refusal({"advanced": {"all": {"channels": ["push"], "quiet": True}}})[0] == (
        "advanced", "all", "quiet")


def test_rows_for_event_types_outside_the_catalogue_are_named_and_all_is_accepted(ruleset):
    settings = SettingsIn.model_validate({"advanced": {
        "all": {}, "ticket.created": {}, "ticket.creatd": {}, "invoice.paid": {}}})
    assert check_row_keys(settings, ruleset) == ["ticket.creatd", "invoice.paid"]


def test_the_users_row_for_the_type_wins_over_their_all_row_which_wins_over_the_rule_file(ruleset):
    advanced = {"all": {"channels": ["email"]},
                "ticket.created": {"channels": ["push", "browser"], "strategy": "first_success",
                                   "origin": ["me", "others"]}}
    prefs, source = effective_prefs(advanced, "ticket.created", ruleset)
    assert (prefs.channels, prefs.strategy, prefs.origin) == (
        (Channel.PUSH, Channel.BROWSER), Strategy.FIRST_SUCCESS, {Origin.ME, Origin.OTHERS})
    assert source == "user setting for ticket.created"
    prefs, source = effective_prefs(advanced, "ticket.assigned", ruleset)
    assert (prefs.channels, source) == ((Channel.EMAIL,), "user setting 'all'")
    # the user's `all` row wins over the rule file's row for the event type too
    prefs, source = effective_prefs(advanced, "video_session.direct_call", ruleset)
    assert (prefs.strategy, source) == (Strategy.ALL, "user setting 'all'")


def test_without_user_rows_the_rule_files_row_for_the_type_applies_then_its_all_row(ruleset):
    prefs, source = effective_prefs({}, "video_session.direct_call", ruleset)
    assert (prefs.channels, prefs.strategy) == ((Channel.BROWSER, Channel.PUSH),
                                                Strategy.FIRST_SUCCESS)
    assert source == "rule-file default for video_session.direct_call"
    prefs, source = effective_prefs(None, "ticket.created", ruleset)
    assert (prefs.channels, prefs.origin, prefs.strategy) == (
        (Channel.BROWSER, Channel.PUSH, Channel.EMAIL), {Origin.OTHERS}, Strategy.ALL)
    assert source == "rule-file default 'all'"


def test_a_stored_row_that_no_longer_parses_is_passed_over_not_fatal(ruleset):
    advanced = {"ticket.created": {"channels": ["sms"]}, "all": {"channels": ["email"]}}
    prefs, source = effective_prefs(advanced, "ticket.created", ruleset)
    assert (prefs.channels, source) == ((Channel.EMAIL,), "user setting 'all'")
