"""Receiver settings (DESIGN §2): switches and advanced rows, and their precedence.

Precedence, first match wins: a switch that is off; the receiver's row for the
event type; the receiver's ``all`` row; the rule-file default for the event
type; the rule-file ``all`` default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field, StrictBool, field_validator

from router.core.enums import Channel, Origin, PrefsSource, Strategy, UserKind
from router.core.inputs import Input
from router.directory.quiet import EmailDigest, QuietWindow
from router.ruleset.conditions import could_hold
from router.ruleset.rulefile import ChannelPrefs, EventSpec, RuleSet, Selector, parse_prefs


class PrefsIn(Input):
    model_config = ConfigDict(extra="forbid")

    channels: list[Channel] = Field(default_factory=lambda: list(Channel),
                                    json_schema_extra={"uniqueItems": True})
    origin: list[Origin] = Field(default_factory=lambda: [Origin.OTHERS])
    strategy: Strategy = Strategy.ALL

    @field_validator("channels", "origin", "strategy")
    @classmethod
    def _known(cls, value: Any, info: Any) -> Any:
        prefs, errors = parse_prefs({info.field_name: value})
        if errors:
            raise ValueError("; ".join(errors))
        return value


class SettingsIn(Input):
    """The settings document of one user: switches plus advanced rows."""

    model_config = ConfigDict(extra="forbid")

    push: StrictBool = True
    email: StrictBool = True
    customer_notifications: StrictBool = True
    advanced: dict[str, PrefsIn] = Field(default_factory=dict)
    quiet_hours: list[QuietWindow] = Field(default_factory=list, max_length=50, description=(
        "Windows in the user's local time (their time_zone) when push and email wait "
        "until the window ends; the feed item is written at once."))
    email_digest: EmailDigest = Field(default_factory=EmailDigest, description=(
        "Emails at once (immediate), or gathered into one mail per local hour (hourly) "
        "or per day at a local time (daily, with 'at'). Critical event types go at once."))

    @field_validator("advanced")
    @classmethod
    def _row_keys(cls, value: dict[str, PrefsIn]) -> dict[str, PrefsIn]:
        for key, row in value.items():
            if len(set(row.channels)) != len(row.channels):
                raise ValueError(f"advanced.{key}.channels lists a channel twice")
        return value


def check_row_keys(settings: SettingsIn, ruleset: RuleSet) -> list[str]:
    """Advanced rows must name 'all' or a catalogued event type."""
    return [key for key in settings.advanced if key != "all" and key not in ruleset.events]


def prefs_source(
    advanced: dict[str, Any] | None, event_type: str, ruleset: RuleSet
) -> tuple[ChannelPrefs, PrefsSource]:
    """The channel preferences that apply, and which row they came from."""
    advanced = advanced or {}
    for key, source in ((event_type, PrefsSource.OWN), ("all", PrefsSource.ALL)):
        if key in advanced:
            prefs, _ = parse_prefs(advanced[key])
            if prefs:
                return prefs, source
    return ruleset.default_for(event_type), PrefsSource.DEFAULT


def effective_prefs(
    advanced: dict[str, Any] | None, event_type: str, ruleset: RuleSet
) -> tuple[ChannelPrefs, str]:
    """The channel preferences that apply, and a readable name of where they came from."""
    prefs, source = prefs_source(advanced, event_type, ruleset)
    if source == PrefsSource.OWN:
        return prefs, f"user setting for {event_type}"
    if source == PrefsSource.ALL:
        return prefs, "user setting 'all'"
    if event_type in ruleset.defaults:
        return prefs, f"rule-file default for {event_type}"
    return prefs, "rule-file default 'all'"


@dataclass(frozen=True)
class UserFacts:
    """What the rules can know of a user before any event: kind, id and roles."""

    kind: UserKind
    id: str
    roles: frozenset[str]


def receivable(ruleset: RuleSet, user: UserFacts) -> list[EventSpec]:
    """The catalogued event types some rule could send this user, in catalogue order:
    a rule whose `when` can hold for the type (before an event only its type and subject
    kind are known) with a selector that can name this user."""
    return [spec for spec in ruleset.events.values() if any(
        could_hold(rule.when, {"type": spec.type, "subject": {"kind": str(spec.subject)}})
        and any(_names(selector, user) for selector in rule.receivers)
        for rule in ruleset.rules)]


def _names(selector: Selector, user: UserFacts) -> bool:
    """Whether this selector can name this user (router.routing.planner resolves them)."""
    if selector.kind == "template_group":  # the planner keeps only the group's employees
        return user.kind == UserKind.EMPLOYEE
    if selector.kind == "customer_org":
        return user.kind == UserKind.CUSTOMER
    if selector.kind == "role":
        return bool(user.roles & set(selector.args))
    if selector.kind == "users":
        return user.id in selector.args
    return selector.kind in ("creator", "participants")  # any user; subscribers: code users
