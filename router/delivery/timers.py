"""Delay and escalate steps on the durable timer (a pending delivery row with a due time).

A held row carries its time step in ``content["timer"]``; a delay with ``cancel_on``
also carries ``content["cancel_key"]`` (the subject, "kind:id"), which is how an event
of a cancelling type finds the still-pending rows of its subject without a new column:
the lookup runs over pending rows only (the partial index ``ix_deliveries_open``) and
only for events of a type some ``cancel_on`` names. An escalation is checked when a
worker claims it: a feed item read (or cleared by a code's cut-off, or a browser step
acknowledged) before it fell due makes it moot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from router.core.enums import Channel, DeliveryStatus, TimeStepKind
from router.delivery import access
from router.delivery.deliveries import ACKED, log_lines
from router.ruleset.timing import TimeStep, format_duration
from router.store import models as m
from router.store.db import one_of
from router.store.models import utcnow

D = cast(Table, m.Delivery.__table__)
FEED = cast(Table, m.FeedItem.__table__)
TIMER = "timer"
CANCEL_KEY = "cancel_key"


def subject_key(kind: str, subject_id: str) -> str:
    return f"{kind}:{subject_id}"


def held_content(content: dict[str, Any], step: TimeStep, due: datetime, subject: str
                 ) -> dict[str, Any]:
    """A held row's content: the texts plus the time step that holds it."""
    timer = {"kind": str(step.kind), "after_s": step.after_s, "due": due.isoformat(),
             "cancel_on": list(step.cancel_on)}
    held = {**content, TIMER: timer}
    if step.cancel_on:
        held[CANCEL_KEY] = subject
    return held


def timer_kind(content: dict[str, Any] | None) -> str | None:
    """What made a delivery wait for a due time at routing: delay, escalate, quiet,
    cadence, digest, throttle; None for one sent at once."""
    content = content or {}
    if TIMER in content:
        return str(content[TIMER]["kind"])
    if "fold" in content:
        return str(content["fold"]["why"])
    return "quiet" if "quiet_until_at" in content else None


def pending_timers(s: Session) -> int:
    """Deliveries waiting for a due time still ahead (the partial open index)."""
    return int(s.scalar(select(func.count()).select_from(D).where(
        D.c.status == DeliveryStatus.PENDING, D.c.next_attempt_at > utcnow())) or 0)


def planned_line(content: dict[str, Any] | None, channel: str) -> str | None:
    """The first history line of a held row: "email delayed 15m until 10:45 UTC"."""
    timer = (content or {}).get(TIMER)
    if not timer:
        return None
    due = _clock(datetime.fromisoformat(timer["due"]))
    after = format_duration(int(timer["after_s"]))
    if timer["kind"] == TimeStepKind.ESCALATE:
        return f"planned: {channel} escalation after {after} at {due} unless read"
    cancel = f" unless {', '.join(timer['cancel_on'])} comes first" if timer["cancel_on"] else ""
    return f"planned: {channel} delayed {after} until {due}{cancel}"


@dataclass(frozen=True)
class Canceller:
    """An event whose type some `cancel_on` names, routed in this transaction."""

    tenant: str
    event_pk: int
    event_id: str
    event_type: str
    subject: str  # subject_key(kind, id)


def cancel(s: Session, cancellers: list[Canceller]) -> dict[int, int]:
    """Skip the still-pending delayed deliveries that these events make moot: same tenant
    and subject, an earlier event, a `cancel_on` naming the event's type. Returns how
    many each cancelling event (by pk) skipped."""
    if not cancellers:
        return {}
    key = D.c.content[CANCEL_KEY].as_string()
    rows = s.execute(select(D.c.id, D.c.tenant_id, D.c.event_pk, key.label("subject"),
                            D.c.content[TIMER]["cancel_on"].label("cancel_on")).where(
        D.c.status == DeliveryStatus.PENDING,
        D.c.tenant_id.in_({c.tenant for c in cancellers}),
        key.in_({c.subject for c in cancellers}))).all()
    by: dict[int, Canceller] = {}
    for row in rows:
        found = next((c for c in cancellers if _cancels(c, row)), None)
        if found is not None:
            by[row.id] = found
    skipped = skip(s, {i: f"cancelled by {c.event_type} (event {c.event_id})"
                       for i, c in by.items()}, DeliveryStatus.PENDING)
    counts: dict[int, int] = {}
    for did in skipped:
        counts[by[did].event_pk] = counts.get(by[did].event_pk, 0) + 1
    return counts


def _cancels(c: Canceller, row: Any) -> bool:
    return (c.tenant == row.tenant_id and c.subject == row.subject and c.event_pk > row.event_pk
            and c.event_type in (row.cancel_on or ()))


def skip(s: Session, why: dict[int, str], status: DeliveryStatus) -> list[int]:
    """Move deliveries still in ``status`` to skipped, each with its own history line."""
    if not why:
        return []
    now = utcnow()
    skipped = list(s.scalars(update(D).where(one_of(s, D.c.id, list(why)), D.c.status == status)
                             .values(status=DeliveryStatus.SKIPPED, next_attempt_at=None,
                                     lease_until=None, worker_id=None, updated_at=now)
                             .returning(D.c.id)))
    log_lines(s, ((i, DeliveryStatus.SKIPPED, why[i]) for i in skipped))
    return skipped


def moot_escalations(s: Session, rows: Iterable[Any]) -> dict[int, str]:
    """Claimed escalations whose feed item was read (or cleared, or acked) before they fell
    due: delivery id -> why it is not sent."""
    due = [r for r in rows if ((r.content or {}).get(TIMER) or {}).get("kind")
           == TimeStepKind.ESCALATE and r.feed_item_id is not None]
    if not due:
        return {}
    items = {i.id: i for i in s.execute(select(
        FEED.c.id, FEED.c.tenant_id, FEED.c.unread, FEED.c.read_at, FEED.c.code_id,
        FEED.c.updated_at).where(one_of(s, FEED.c.id, [r.feed_item_id for r in due])))}
    acked = _acked(s, due)
    why = {r.id: _why_moot(s, r, items.get(r.feed_item_id), acked) for r in due}
    return {did: reason for did, reason in why.items() if reason}


def _acked(s: Session, rows: list[Any]) -> set[tuple[int, str, str]]:
    return {(r.event_pk, r.receiver_kind, r.receiver_id) for r in s.execute(
        select(D.c.event_pk, D.c.receiver_kind, D.c.receiver_id).where(
            one_of(s, D.c.event_pk, list({r.event_pk for r in rows})),
            D.c.channel == Channel.BROWSER, D.c.status == DeliveryStatus.SENT,
            D.c.provider_response == ACKED))}


def _why_moot(s: Session, row: Any, item: Any | None, acked: set[tuple[int, str, str]]) -> str:
    if item is None:
        return "not escalated: the feed item is gone"
    if not item.unread:
        return f"not escalated: read at {_clock(item.read_at)}" if item.read_at \
            else "not escalated: read"
    if (row.event_pk, row.receiver_kind, row.receiver_id) in acked:
        return "not escalated: the browser step was acknowledged"
    cut = access.cutoff(s, item.tenant_id, item.code_id)
    if cut is not None and item.updated_at <= cut:
        return f"not escalated: the code's notifications were cleared at {_clock(cut)}"
    return ""


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M:%S UTC")
