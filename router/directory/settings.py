"""Receiver settings (DESIGN §2): switches and advanced rows, and their precedence.

Precedence, first match wins: a switch that is off; the receiver's row for the
event type; the receiver's ``all`` row; the rule-file default for the event
type; the rule-file ``all`` default.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, StrictBool, field_validator

from router.core.enums import Channel, Origin, Strategy
from router.core.inputs import Input
from router.directory.quiet import EmailDigest, QuietWindow
from router.ruleset.rulefile import ChannelPrefs, RuleSet, parse_prefs


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


def effective_prefs(
    advanced: dict[str, Any] | None, event_type: str, ruleset: RuleSet
) -> tuple[ChannelPrefs, str]:
    """The channel preferences that apply, and a readable name of where they came from."""
    advanced = advanced or {}
    for key, label in ((event_type, f"user setting for {event_type}"), ("all", "user setting 'all'")):
        if key in advanced:
            prefs, _ = parse_prefs(advanced[key])
            if prefs:
                return prefs, label
    if event_type in ruleset.defaults:
        return ruleset.defaults[event_type], f"rule-file default for {event_type}"
    return ruleset.default_for(event_type), "rule-file default 'all'"
