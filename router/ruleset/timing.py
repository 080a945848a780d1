"""Time in the event catalogue: ``delay`` (with ``cancel_on``) and ``escalate`` steps, and
the ``digest`` and ``throttle`` folds.

A time step holds some channel steps of an event type for a duration: the delivery row
is written at routing with its due time (the durable timer, docs/decisions.md) and a
worker releases it then, unless it became moot (a cancelling event on the same subject,
or the feed item was read before an escalation fell due).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from router.core.enums import Channel, TimeStepKind

YamlPath = tuple[str | int, ...]
Fail = Callable[[YamlPath, str], None]
DURATION = re.compile(r"^(\d+)(s|m|h)$")
UNIT_S = {"s": 1, "m": 60, "h": 3600}
MAX_AFTER_S = 7 * 24 * 3600
# the browser step is settled at routing (the feed item): only queued channels can wait
HOLDABLE = (Channel.PUSH, Channel.EMAIL)
KEYS = {TimeStepKind.DELAY: {"channels", "after", "cancel_on"},
        TimeStepKind.ESCALATE: {"after", "to"}}
FOLD_KEYS = {"digest": {"window", "key", "channels"},
             "throttle": {"max", "per", "key", "channels"}}
FOLD_BY = ("subject", "type", "receiver")  # what events of one receiver are gathered by
MAX_THROTTLE = 1000


@dataclass(frozen=True)
class TimeStep:
    kind: TimeStepKind
    after_s: int
    channels: tuple[Channel, ...]
    cancel_on: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for explain and `rules test`: "email escalated after 10m unless read"."""
        channels = ", ".join(self.channels)
        if self.kind == TimeStepKind.ESCALATE:
            return f"{channels} escalated after {format_duration(self.after_s)} unless read"
        cancel = f" unless {', '.join(self.cancel_on)} comes first" if self.cancel_on else ""
        return f"{channels} delayed {format_duration(self.after_s)}{cancel}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "after_s": self.after_s,
                "channels": [str(c) for c in self.channels], "cancel_on": list(self.cancel_on),
                "describe": self.describe()}


@dataclass(frozen=True)
class Fold:
    """Gathers a receiver's deliveries on some channels into one message.

    ``digest``: the first event opens a window of ``window_s``; the events of the same
    receiver and key inside it go out together when it closes. ``throttle``: at most
    ``limit`` deliveries per ``window_s`` (sliding) go out one by one; the rest fold
    into one digest, sent when the window frees a slot."""

    kind: str  # "digest" | "throttle"
    window_s: int
    key: str  # one of FOLD_BY
    channels: tuple[Channel, ...]
    limit: int = 0  # throttle only

    def describe(self) -> str:
        channels = ", ".join(self.channels)
        by = f"per {self.key}" if self.key != "receiver" else "per receiver"
        if self.kind == "throttle":
            return (f"{channels} throttled to {self.limit} per {format_duration(self.window_s)} "
                    f"{by}, the rest in one digest")
        return f"{channels} gathered in a {format_duration(self.window_s)} digest {by}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "window_s": self.window_s, "key": self.key,
                "channels": [str(c) for c in self.channels], "max": self.limit or None,
                "describe": self.describe()}

    def key_of(self, doc: dict[str, Any]) -> str:
        """The gathering key of an event: its subject, its type, or nothing."""
        if self.key == "subject":
            return f"{doc['subject']['kind']}:{doc['subject']['id']}"
        return doc["type"] if self.key == "type" else "*"


def parse_duration(raw: Any) -> tuple[int | None, str]:
    """`30s`, `15m`, `2h` -> seconds; or (None, why not)."""
    match = DURATION.match(raw) if isinstance(raw, str) else None
    if match is None:
        return None, f"a duration is a whole number with s, m or h (30s, 15m, 2h); got {raw!r}"
    seconds = int(match.group(1)) * UNIT_S[match.group(2)]
    if not 0 < seconds <= MAX_AFTER_S:
        return None, f"a duration is more than 0s and at most 7 days; got {raw!r}"
    return seconds, ""


def format_duration(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_steps(spec: dict[str, Any], path: YamlPath, fail: Fail) -> tuple[TimeStep, ...]:
    """The `delay` and `escalate` keys of one event type; each mistake goes to ``fail``."""
    steps = [step for kind in TimeStepKind if kind.value in spec
             for step in [_step(kind, spec[kind.value], path + (kind.value,), fail)] if step]
    held = [c for step in steps for c in step.channels]
    for channel in {c for c in held if held.count(c) > 1}:
        fail(path, f"{channel} is both delayed and escalated: give each channel one time step")
    return tuple(steps)


def _step(kind: TimeStepKind, raw: Any, path: YamlPath, fail: Fail) -> TimeStep | None:
    if not isinstance(raw, dict):
        fail(path, f"'{kind}' is a mapping: {_example(kind)}")
        return None
    for key in sorted(set(raw) - KEYS[kind]):
        fail(path + (key,), f"unknown key {key!r} in '{kind}' (allowed: "
             f"{', '.join(sorted(KEYS[kind]))})")
    after, why = parse_duration(raw.get("after"))
    if after is None:
        fail(path + ("after",), why)
    channel_key = "to" if kind == TimeStepKind.ESCALATE else "channels"
    channels = _channels(raw.get(channel_key), path + (channel_key,), fail)
    cancel_on = _types(raw.get("cancel_on", []), path + ("cancel_on",), fail)
    if after is None or not channels:
        return None
    return TimeStep(kind, after, channels, cancel_on)


def _channels(raw: Any, path: YamlPath, fail: Fail) -> tuple[Channel, ...]:
    allowed = [c.value for c in HOLDABLE]
    if not isinstance(raw, list) or not raw or not all(c in allowed for c in raw):
        fail(path, f"a non-empty list out of: {', '.join(allowed)} (the browser step is "
             f"the feed item, written at once); got {raw!r}")
        return ()
    return tuple(dict.fromkeys(Channel(c) for c in raw))


def _types(raw: Any, path: YamlPath, fail: Fail) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        fail(path, f"cancel_on is a list of event types; got {raw!r}")
        return ()
    return tuple(raw)


def _example(kind: TimeStepKind) -> str:
    if kind == TimeStepKind.ESCALATE:
        return "{after: 10m, to: [email]}"
    return "{channels: [email], after: 15m, cancel_on: [ticket.status_changed]}"


def parse_folds(spec: dict[str, Any], path: YamlPath, fail: Fail,
                steps: tuple[TimeStep, ...], critical: bool) -> tuple[Fold, ...]:
    """The `digest` and `throttle` keys of one event type."""
    folds = tuple(fold for kind in FOLD_KEYS if kind in spec
                  for fold in [_fold(kind, spec[kind], path + (kind,), fail)] if fold)
    for fold in folds:
        if critical:
            fail(path + (fold.kind,), f"a critical event type goes at once: it cannot have "
                 f"'{fold.kind}' (drop one of the two)")
    taken = [c for step in steps for c in step.channels] + [c for f in folds for c in f.channels]
    for channel in sorted({c for f in folds for c in f.channels if taken.count(c) > 1}):
        fail(path, f"{channel} has more than one of delay, escalate, digest and throttle: "
             "give each channel one")
    return folds


def _fold(kind: str, raw: Any, path: YamlPath, fail: Fail) -> Fold | None:
    if not isinstance(raw, dict):
        fail(path, f"'{kind}' is a mapping: " + ("{window: 10m, key: subject, channels: [email]}"
             if kind == "digest" else "{max: 3, per: 10m, key: subject, channels: [push]}"))
        return None
    for key in sorted(set(raw) - FOLD_KEYS[kind]):
        fail(path + (key,), f"unknown key {key!r} in '{kind}' (allowed: "
             f"{', '.join(sorted(FOLD_KEYS[kind]))})")
    window_key = "window" if kind == "digest" else "per"
    window, why = parse_duration(raw.get(window_key))
    if window is None:
        fail(path + (window_key,), why)
    by = raw.get("key", "subject")
    if by not in FOLD_BY:
        fail(path + ("key",), f"key is one of {', '.join(FOLD_BY)}; got {by!r}")
    channels = _channels(raw.get("channels"), path + ("channels",), fail)
    limit = raw.get("max", 0) if kind == "throttle" else 0
    if kind == "throttle" and (not isinstance(limit, int) or isinstance(limit, bool)
                               or not 1 <= limit <= MAX_THROTTLE):
        fail(path + ("max",), f"max is a whole number from 1 to {MAX_THROTTLE}; got {limit!r}")
        return None
    if window is None or not channels or by not in FOLD_BY:
        return None
    return Fold(kind, window, by, channels, limit)
