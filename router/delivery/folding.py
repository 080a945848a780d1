"""Folds: which deliveries wait to go out together as one digest (DESIGN §10, #15).

A delivery row that waits for a digest carries a ``digest_key`` and its due time in
``next_attempt_at``; the rows sharing a key are sent as one message when they fall due
(``router.delivery.digests``). Four things fold, first match wins:

- ``quiet``: the receiver is in quiet hours; push and email wait for the window's end,
  and everything deferred to that end goes out as one digest per channel.
- ``cadence``: the user chose an hourly or daily email digest.
- ``digest``: the event type's rule-file digest on this channel: the first event of a
  receiver and key opens a window, the next ones inside it join it.
- ``throttle``: past ``max`` deliveries in the sliding window of a receiver and key, the
  rest fold into one digest sent when the window frees a slot.

Quiet and cadence keys hold their due time, so every router computes the same key
without asking. Digest and throttle windows are found with one query per batch over
the still-pending rows (the partial index ``ix_deliveries_digest``); route batches that
fold the same key take turns on a PostgreSQL advisory lock, so two workers neither open
two windows for one key nor both send the throttle's last free slot.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from router.core.enums import DeliveryStatus
from router.store import models as m

D = cast(Table, m.Delivery.__table__)
QUIET, CADENCE, DIGEST, THROTTLE = "quiet", "cadence", "digest", "throttle"
MAX_KEY_LOCKS = 32  # a batch folding more keys than this locks its tenant's folding at once
FOLD = "fold"  # the content key of a folded row: {why, until, label, note}


def quiet_key(channel: str, kind: str, rid: str, until: datetime) -> str:
    return f"q|{channel}|{kind}|{rid}|{until.isoformat()}"


def cadence_key(kind: str, rid: str, until: datetime) -> str:
    return f"c|email|{kind}|{rid}|{until.isoformat()}"


def window_key(channel: str, kind: str, rid: str, key: str) -> str:
    return f"d|{channel}|{kind}|{rid}|{key}"


def throttle_key(channel: str, kind: str, rid: str, key: str) -> str:
    return f"{channel}|{kind}|{rid}|{key}"


@dataclass(frozen=True)
class Wait:
    """Why and how one planned delivery row may fold."""

    why: str  # QUIET, CADENCE, DIGEST or THROTTLE
    key: str  # the digest key; THROTTLE: the throttle key
    due: datetime | None = None  # QUIET and CADENCE: fixed
    label: str = ""  # QUIET and CADENCE: the due time in the receiver's zone
    window_s: int = 0  # DIGEST: the window; THROTTLE: the sliding window
    limit: int = 0  # THROTTLE: deliveries per window that go one by one


def assign(s: Session, now: datetime, planned: list[tuple[dict[str, Any], Wait]]) -> None:
    """Set ``digest_key``, ``throttle_key``, ``next_attempt_at`` and the content's fold on
    these planned delivery rows (dicts about to be inserted), in batch order."""
    by_tenant: dict[str, list[tuple[dict[str, Any], Wait]]] = defaultdict(list)
    for value, wait in planned:
        by_tenant[value["tenant_id"]].append((value, wait))
    for tenant, rows in by_tenant.items():
        _assign_tenant(s, tenant, now, rows)


def _assign_tenant(s: Session, tenant: str, now: datetime,
                   rows: list[tuple[dict[str, Any], Wait]]) -> None:
    _serialise(s, tenant, {w.key for _, w in rows if w.why in (DIGEST, THROTTLE)})
    counts = _throttle_counts(s, tenant, now, [w for _, w in rows if w.why == THROTTLE])
    windows: list[tuple[dict[str, Any], Wait, str, int]] = []  # value, wait, key, length
    for value, wait in rows:
        if wait.why in (QUIET, CADENCE):
            assert wait.due is not None
            _fold(value, wait.why, wait.key, wait.due, wait.label, _fixed_note(value, wait))
        elif wait.why == DIGEST:
            windows.append((value, wait, wait.key, wait.window_s))
        else:
            value["throttle_key"] = wait.key
            count, oldest = counts.get(wait.key, (0, None))
            if count < wait.limit:
                counts[wait.key] = (count + 1, oldest or now)
                continue
            frees = (oldest or now) + timedelta(seconds=wait.window_s)
            windows.append((value, wait, f"t|{wait.key}", max(
                1, int((frees - now).total_seconds() + 0.999))))
    if windows:
        _windows(s, tenant, now, windows)


def _serialise(s: Session, tenant: str, keys: set[str]) -> None:
    """Route batches that count a throttle or look for an open window of the same key take
    turns (PostgreSQL transaction-scoped advisory locks; the statements after the lock see
    what the other committed). A batch with many keys locks its tenant instead, and the
    others hold the tenant lock shared, so the lock table stays small."""
    if not keys or s.get_bind().dialect.name != "postgresql":
        return
    if len(keys) > MAX_KEY_LOCKS:
        s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"),
                  {"k": f"fold|{tenant}"})
        return
    s.execute(text("SELECT pg_advisory_xact_lock_shared(hashtextextended(:k, 7))"),
              {"k": f"fold|{tenant}"})
    for key in sorted(keys):  # one order for every batch: no deadlock between two
        s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7))"),
                  {"k": f"fold|{tenant}|{key}"})


def _throttle_counts(s: Session, tenant: str, now: datetime, waits: list[Wait]
                     ) -> dict[str, tuple[int, datetime | None]]:
    """Per throttle key: deliveries that went one by one inside its window, the oldest."""
    found: dict[str, tuple[int, datetime | None]] = {}
    by_window: dict[int, set[str]] = defaultdict(set)
    for wait in waits:
        by_window[wait.window_s].add(wait.key)
    for window_s, keys in by_window.items():
        for key, count, oldest in s.execute(
                select(D.c.throttle_key, func.count(), func.min(D.c.created_at)).where(
                    D.c.tenant_id == tenant, D.c.throttle_key.in_(keys),
                    D.c.digest_key.is_(None),
                    D.c.created_at > now - timedelta(seconds=window_s))
                .group_by(D.c.throttle_key)):
            found[key] = (count, oldest)
    return found


def _windows(s: Session, tenant: str, now: datetime,
             windows: list[tuple[dict[str, Any], Wait, str, int]]) -> None:
    """Join the open window of each key (a pending row with that key), or open one."""
    keys = {key for _, _, key, _ in windows}
    open_: dict[str, tuple[datetime, int]] = {
        key: (due, count) for key, due, count in s.execute(
            select(D.c.digest_key, func.min(D.c.next_attempt_at), func.count()).where(
                D.c.tenant_id == tenant, D.c.digest_key.in_(keys),
                D.c.status == DeliveryStatus.PENDING).group_by(D.c.digest_key))}
    for value, wait, key, length in windows:
        due, count = open_.get(key, (now + timedelta(seconds=length), 0))
        open_[key] = (due, count + 1)
        channel = value["channel"]
        closes = f"{due:%H:%M:%S} UTC"
        if wait.why == THROTTLE:
            note = (f"{channel} throttled ({wait.limit} per "
                    f"{_span(wait.window_s)} sent already): folded into the digest at {closes}")
        elif count:
            note = f"{channel} joins the digest window closing {closes} ({count + 1} events so far)"
        else:
            note = f"{channel} opens a digest window closing {closes}"
        _fold(value, wait.why, key, due, closes, note)


def _fold(value: dict[str, Any], why: str, key: str, due: datetime, label: str,
          note: str) -> None:
    value["digest_key"] = key
    value["next_attempt_at"] = due
    value["content"] = {**value["content"], FOLD: {
        "why": why, "until": due.isoformat(), "label": label, "note": note}}


def _fixed_note(value: dict[str, Any], wait: Wait) -> str:
    if wait.why == QUIET:
        return f"{value['channel']} deferred by quiet hours until {wait.label}"
    return f"email waits for the receiver's digest at {wait.label}"


def _span(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def note_of(content: dict[str, Any] | None) -> str | None:
    """The history line a folded row was planned with, if it was."""
    fold = (content or {}).get(FOLD)
    return str(fold["note"]) if fold else None


def waiting(s: Session, tenant: str, rows: list[Any]) -> dict[int, str]:
    """For the pending rows of a digest: when it goes out and how many events it holds now."""
    keyed = {r.id: r for r in rows if r.digest_key and r.status == DeliveryStatus.PENDING}
    if not keyed:
        return {}
    counts: dict[str, int] = {key: n for key, n in s.execute(
        select(D.c.digest_key, func.count()).where(
            D.c.tenant_id == tenant, D.c.digest_key.in_({r.digest_key for r in keyed.values()}),
            D.c.status == DeliveryStatus.PENDING).group_by(D.c.digest_key))}
    return {i: f"digest {'goes out' if r.digest_key.startswith(('q|', 'c|')) else 'window closes'}"
               f" {r.next_attempt_at:%H:%M:%S} UTC ({counts.get(r.digest_key, 1)} events so far)"
            for i, r in keyed.items()}
