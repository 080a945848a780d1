"""The delivery state machine: pending -> sending -> sent | failed | skipped.

Every move is a guarded UPDATE (``WHERE status = <expected>``), so two workers
holding the same message can never both send one delivery: only the one whose
claim changed the row goes on. ``first_success`` sequences advance here: a
step that fails, gives up retrying, or is not acknowledged creates the next
step's delivery (DESIGN §2, §5).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from channels.base import Job, Outcome
from router import models as m
from router.config import DeliveryConfig
from router.enums import Channel, DeliveryStatus, EventStatus, OutcomeStatus, Strategy
from router.models import utcnow


def mark(status: str, detail: str = "") -> dict[str, Any]:
    return {"status": str(status), "at": utcnow().isoformat(), "detail": detail}


def claim(s: Session, ids: list[int], channel: Channel) -> list[m.Delivery]:
    """Move due pending deliveries to sending; returns only the rows this call moved."""
    now = utcnow()
    claimed = list(s.scalars(
        update(m.Delivery)
        .where(m.Delivery.id.in_(ids), m.Delivery.channel == channel,
               m.Delivery.status == DeliveryStatus.PENDING,
               or_(m.Delivery.next_attempt_at.is_(None), m.Delivery.next_attempt_at <= now))
        .values(status=DeliveryStatus.SENDING, attempts=m.Delivery.attempts + 1, updated_at=now)
        .returning(m.Delivery)
        .execution_options(synchronize_session=False)))
    for row in claimed:
        row.history = [*row.history, mark(DeliveryStatus.SENDING, f"attempt {row.attempts}")]
    return claimed


def jobs_for(s: Session, rows: list[m.Delivery]) -> list[Job]:
    events = {e.pk: e.payload for e in s.scalars(
        select(m.EventRow).where(m.EventRow.pk.in_({r.event_pk for r in rows})))}
    return [Job(id=r.id, tenant=r.tenant_id, channel=Channel(r.channel),
                receiver_kind=r.receiver_kind, receiver_id=r.receiver_id, strategy=r.strategy,
                attempts=r.attempts, content=dict(r.content), event=events.get(r.event_pk, {}),
                feed_item_id=r.feed_item_id) for r in rows]


@dataclass
class Recorded:
    """What the worker must enqueue after recording a batch's outcomes."""

    retry: dict[float, list[int]] = field(default_factory=dict)  # delay s -> ids
    next_steps: dict[Channel, list[int]] = field(default_factory=dict)
    await_ack: list[int] = field(default_factory=list)


def backoff(attempts: int, cfg: DeliveryConfig, retry_after: float | None) -> float:
    """Bounded exponential backoff with full jitter; a provider's Retry-After wins if longer."""
    ceiling = min(cfg.backoff_max_s, cfg.backoff_min_s * 2 ** max(attempts - 1, 0))
    delay = random.uniform(cfg.backoff_min_s, max(cfg.backoff_min_s, ceiling))
    return max(delay, retry_after or 0.0)


def record(s: Session, outcomes: dict[int, Outcome], cfg: DeliveryConfig) -> Recorded:
    """Apply each outcome to its delivery (still in ``sending``); plan follow-up work."""
    todo = Recorded()
    rows = {r.id: r for r in s.scalars(select(m.Delivery).where(
        m.Delivery.id.in_(list(outcomes)), m.Delivery.status == DeliveryStatus.SENDING)
        .with_for_update())}
    for did, outcome in outcomes.items():
        row = rows.get(did)
        if row is not None:
            _apply(s, row, outcome, cfg, todo)
    return todo


def _apply(s: Session, row: m.Delivery, outcome: Outcome, cfg: DeliveryConfig,
           todo: Recorded) -> None:
    row.updated_at = utcnow()
    row.provider_response = outcome.provider_ref or outcome.detail or row.provider_response
    if outcome.status == OutcomeStatus.SENT:
        _finish(row, DeliveryStatus.SENT, outcome.detail)
        if row.strategy == Strategy.FIRST_SUCCESS and row.chain:
            row.history = [*row.history, mark(DeliveryStatus.SENT, "sequence ended here; not "
                                              f"tried: {', '.join(row.chain)}")]
    elif outcome.status == OutcomeStatus.AWAITING_ACK:
        row.history = [*row.history, mark(DeliveryStatus.SENDING, outcome.detail)]
        todo.await_ack.append(row.id)
    elif outcome.status == OutcomeStatus.RETRY and row.attempts < cfg.max_attempts:
        delay = backoff(row.attempts, cfg, outcome.retry_after)
        row.status, row.last_error = DeliveryStatus.PENDING, outcome.detail
        row.next_attempt_at = utcnow() + timedelta(seconds=delay)
        row.history = [*row.history, mark(DeliveryStatus.PENDING,
                                          f"retry in {delay:.1f}s: {outcome.detail}")]
        todo.retry.setdefault(round(delay, 1), []).append(row.id)
    else:
        detail = outcome.detail
        if outcome.status == OutcomeStatus.RETRY:
            detail = f"gave up after {row.attempts} attempts: {detail}"
        elif outcome.status == OutcomeStatus.GONE:
            detail = f"gone: {detail}"
        row.last_error = detail
        _finish(row, DeliveryStatus.FAILED, detail)
        _next_step(s, row, todo, detail)


def _finish(row: m.Delivery, status: DeliveryStatus, detail: str) -> None:
    row.status = status
    row.next_attempt_at = None
    row.history = [*row.history, mark(status, detail)]


def _next_step(s: Session, row: m.Delivery, todo: Recorded, why: str) -> None:
    """first_success: the step failed, so the next channel in the chain is tried."""
    if row.strategy != Strategy.FIRST_SUCCESS or not row.chain:
        return
    channel, rest = Channel(row.chain[0]), row.chain[1:]
    nxt = m.Delivery(tenant_id=row.tenant_id, event_pk=row.event_pk,
                     receiver_kind=row.receiver_kind, receiver_id=row.receiver_id,
                     channel=channel, status=DeliveryStatus.PENDING, strategy=row.strategy,
                     step=row.step + 1, chain=rest, feed_item_id=row.feed_item_id,
                     content=row.content, attempts=0,
                     history=[mark(DeliveryStatus.PENDING,
                                   f"step {row.step + 1}: tried because {row.channel} "
                                   f"did not succeed ({why})")])
    s.add(nxt)
    s.flush()
    row.history = [*row.history, mark(row.status, f"next: {channel} (delivery {nxt.id})")]
    todo.next_steps.setdefault(channel, []).append(nxt.id)


def acknowledge(s: Session, tenant: str, delivery_id: int, receiver: tuple[str, str]) -> bool:
    """A live session acknowledged the item: the browser step succeeded."""
    row = s.scalars(select(m.Delivery).where(
        m.Delivery.id == delivery_id, m.Delivery.tenant_id == tenant,
        m.Delivery.receiver_kind == receiver[0], m.Delivery.receiver_id == receiver[1],
        m.Delivery.channel == Channel.BROWSER, m.Delivery.status == DeliveryStatus.SENDING)
        .with_for_update()).first()
    if row is None:
        return False
    _apply(s, row, Outcome.sent("acknowledged by a live session"), DeliveryConfig(), Recorded())
    return True


def expire_unacked(s: Session, ids: list[int], cfg: DeliveryConfig) -> Recorded:
    """After the presence window: unacknowledged browser steps fail and the chain moves on."""
    todo = Recorded()
    rows = s.scalars(select(m.Delivery).where(
        m.Delivery.id.in_(ids), m.Delivery.channel == Channel.BROWSER,
        m.Delivery.status == DeliveryStatus.SENDING).with_for_update())
    for row in rows:
        _apply(s, row, Outcome(OutcomeStatus.UNACKED, "no live session acknowledged within "
                               f"{cfg.presence_window_s:g}s"), cfg, todo)
    return todo


@dataclass
class Stale:
    pending: dict[Channel, list[int]] = field(default_factory=dict)
    unacked: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)


def sweep(s: Session, cfg: DeliveryConfig, now: datetime | None = None) -> Stale:
    """Find work a lost message or a crashed worker left behind, and make it runnable."""
    now = now or utcnow()
    deadline = now - timedelta(seconds=cfg.sweep_after_s)
    stale = Stale()
    stuck = list(s.scalars(select(m.Delivery).where(
        m.Delivery.status == DeliveryStatus.SENDING, m.Delivery.updated_at < deadline)
        .limit(5000).with_for_update(skip_locked=True)))
    for row in stuck:
        if row.channel == Channel.BROWSER and row.strategy == Strategy.FIRST_SUCCESS:
            stale.unacked.append(row.id)
            continue
        row.status, row.updated_at = DeliveryStatus.PENDING, now
        row.history = [*row.history, mark(DeliveryStatus.PENDING,
                                          "recovered by the sweeper (worker lost while sending)")]
    pending = s.execute(select(m.Delivery.id, m.Delivery.channel).where(
        m.Delivery.status == DeliveryStatus.PENDING,
        or_(and_(m.Delivery.next_attempt_at.is_(None), m.Delivery.updated_at < deadline),
            m.Delivery.next_attempt_at < deadline)).limit(20000)).all()
    for did, channel in pending:
        stale.pending.setdefault(Channel(channel), []).append(did)
    for row in stuck:
        if row.status == DeliveryStatus.PENDING:
            stale.pending.setdefault(Channel(row.channel), []).append(row.id)
    stale.events = list(s.scalars(select(m.EventRow.pk).where(
        m.EventRow.status == EventStatus.RECEIVED, m.EventRow.received_at < deadline)
        .limit(20000)))
    return stale
