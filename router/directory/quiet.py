"""Receiver time zones and quiet hours (DESIGN §10): when push and email wait.

A quiet window is given in the receiver's local time: the weekdays it starts on, a
start and an end (``{days: [mon, tue], from: "22:00", to: "07:00"}``); an end at or
before the start means the window crosses midnight and ends the next day. Local
wall times become UTC instants with zoneinfo, so a window across a DST change ends
at the right instant; an end inside the spring-forward gap ends when the gap does.
Deliveries are deferred to the window's end, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from router.core.inputs import Input

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
START = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"  # HH:MM, or HH:MM:SS
END = r"^(([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?|24:00)$"  # 24:00: the end of the day
DEFAULT_ZONE = "UTC"
DAY = 24 * 3600  # seconds
WEEK = 7 * DAY


class QuietWindow(Input):
    """One quiet window: on these weekdays from a local time to a local time."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    days: list[Weekday] = Field(min_length=1, max_length=7,
                                json_schema_extra={"uniqueItems": True})
    start: str = Field(alias="from", pattern=START, examples=["22:00"])
    end: str = Field(alias="to", pattern=END, examples=["07:00"])

    @field_validator("days")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a day twice")
        return value

    @field_validator("end")
    @classmethod
    def _not_empty(cls, value: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and _seconds(value) % DAY == _seconds(start):
            raise ValueError("must differ from 'from' (a window of no time or of 24 hours)")
        return value


def check_zone(name: str) -> str:
    """The name if it is a known IANA time zone; a ValueError saying so if not."""
    if zone_or_none(name) is None:
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as "
                         "'Europe/Berlin' or 'UTC'")
    return name


@lru_cache(maxsize=1024)
def zone_or_none(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, or not a zone key at all
        return None


def zone_for(*names: str | None) -> ZoneInfo:
    """The first known zone of these (the user's, the tenant's), else UTC."""
    for name in names:
        zone = zone_or_none(name) if name else None
        if zone is not None:
            return zone
    return ZoneInfo(DEFAULT_ZONE)


# ----------------------------------------------------------------- validation


def _seconds(hhmm: str) -> int:
    """Seconds after midnight of "HH:MM" or "HH:MM:SS"."""
    parts = [int(p) for p in hhmm.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def _spans(window: QuietWindow) -> list[tuple[int, int, str]]:
    """The window as seconds of the week: (start, end, day), end past the start."""
    start, end = _seconds(window.start), _seconds(window.end)
    length = end - start if end > start else end + DAY - start
    return [(WEEKDAYS.index(d) * DAY + start, WEEKDAYS.index(d) * DAY + start + length, d)
            for d in window.days]


def overlaps(windows: Sequence[QuietWindow]) -> list[tuple[str, str]]:
    """(field path, message) for each window that overlaps an earlier one."""
    problems: list[tuple[str, str]] = []
    for j, later in enumerate(windows):
        clash = next(((i, day) for i, earlier in enumerate(windows[:j])
                      for day in _clash(_spans(earlier), _spans(later))), None)
        if clash is not None:
            problems.append((f"quiet_hours.{j}.from", f"overlaps quiet_hours.{clash[0]} "
                             f"(the window starting {clash[1]})"))
    return problems


def _clash(first: list[tuple[int, int, str]], second: list[tuple[int, int, str]]
           ) -> Iterable[str]:
    for a_start, a_end, _ in first:
        for b_start, b_end, day in second:
            if any(a_start < b_end + shift and b_start + shift < a_end
                   for shift in (-WEEK, 0, WEEK)):
                yield day


# ----------------------------------------------------------------- arithmetic


@dataclass(frozen=True)
class Deferral:
    """Push and email wait until ``until`` (UTC); ``label`` says it in local time."""

    until: datetime
    label: str  # "07:00 Europe/Berlin"

    def note(self, what: str) -> str:
        return f"{what} deferred by quiet hours until {self.label}"


@dataclass(frozen=True)
class _Window:
    days: frozenset[int]  # date.weekday() numbers
    start: int  # seconds after local midnight
    end: int  # seconds after local midnight of the start day (> start)


def compile_windows(stored: Iterable[dict[str, Any]]) -> tuple[_Window, ...]:
    """Stored windows ({days, from, to}, as the settings API wrote them)."""
    compiled = []
    for raw in stored:
        start, end = _seconds(raw["from"]), _seconds(raw["to"])
        compiled.append(_Window(frozenset(WEEKDAYS.index(d) for d in raw["days"]), start,
                                end if end > start else end + DAY))
    return tuple(compiled)


def quiet_until(windows: Sequence[_Window], zone: ZoneInfo, now: datetime) -> datetime | None:
    """The instant the quiet time around ``now`` ends (following windows that join on),
    or None when ``now`` is not quiet."""
    until: datetime | None = None
    for _ in range(len(windows) * 7 + 1):  # each window-day joins at most once
        end = _end_around(windows, zone, until or now)
        if end is None:
            break
        until = end
    return until


def _end_around(windows: Sequence[_Window], zone: ZoneInfo, at: datetime) -> datetime | None:
    today = at.astimezone(zone).date()
    for w in windows:
        for day in (today, today - timedelta(days=1)):  # started today, or yesterday
            if day.weekday() in w.days and _instant(day, w.start, zone) <= at < (
                    end := _instant(day, w.end, zone)):
                return end
    return None


def _instant(day: date, seconds: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time; a wall time the clock skips (the spring-
    forward gap) is the first instant after the gap."""
    wall = datetime.combine(day, time()) + timedelta(seconds=seconds)
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    probe = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the gap's end
    while probe.astimezone(zone).replace(tzinfo=None) < wall:  # gaps end on a whole minute
        probe = probe.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return probe


def deferral(stored: Iterable[dict[str, Any]] | None, zone: ZoneInfo, now: datetime
             ) -> Deferral | None:
    """Whether a receiver with these stored windows is quiet now, and until when."""
    windows = compile_windows(stored or ())
    until = quiet_until(windows, zone, now) if windows else None
    if until is None:
        return None
    local = until.astimezone(zone)
    return Deferral(until, f"{local:%H:%M:%S}"[:8 if local.second else 5] + f" {zone.key}")


# ----------------------------------------------------------------- email digest cadence


class EmailDigest(Input):
    """How often a user's emails go out: each at once, or gathered into one mail per
    local hour or per day at a local time of their choice."""

    model_config = ConfigDict(extra="forbid")

    cadence: Literal["immediate", "hourly", "daily"] = "immediate"
    at: str | None = Field(default=None, pattern=START, examples=["08:00"], validate_default=True,
                           description=(
        "daily only: the local time (the user's time_zone) the day's digest goes out"))

    @field_validator("at")
    @classmethod
    def _daily_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        cadence = info.data.get("cadence")
        if value is None and cadence == "daily":
            raise ValueError("a daily digest needs 'at', the local time it goes out (HH:MM)")
        if value is not None and cadence != "daily":
            raise ValueError(f"'at' is only for the daily cadence (this one is {cadence!r})")
        return value


def cadence_due(stored: dict[str, Any] | None, zone: ZoneInfo, now: datetime
                ) -> Deferral | None:
    """When an email routed at ``now`` goes out under this cadence (None: at once).
    Hourly: the next full local hour; daily: the next local ``at`` (DST-correct)."""
    cadence = (stored or {}).get("cadence", "immediate")
    if cadence == "immediate":
        return None
    if cadence == "hourly":
        until = next_local_hour(now, zone)
        return Deferral(until, f"{until.astimezone(zone):%H:%M} {zone.key} (hourly digest)")
    at = _seconds(stored["at"]) if stored and stored.get("at") else 0
    day = now.astimezone(zone).date()
    until = _instant(day, at, zone)
    if until <= now:
        until = _instant(day + timedelta(days=1), at, zone)
    return Deferral(until, f"{until.astimezone(zone):%H:%M} {zone.key} (daily digest)")



def next_local_hour(now: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after ``now`` at a full local hour. UTC offsets are whole
    quarter hours, so stepping over UTC quarter hours finds it in at most 4 steps,
    across DST changes too (a repeated hour has two full hours)."""
    at = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    while True:
        at += timedelta(minutes=15)
        if at.astimezone(zone).minute == 0:
            return at
