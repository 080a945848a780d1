"""Per-channel circuit breaker, shared by every worker process through one row per channel.

    closed --breaker_failures transient failures in a row--> open (held until reopen_at)
    open --reopen_at passed, one worker wins the guarded move--> half_open (one probe)
    half_open --the probe was sent--> closed
    half_open --the probe failed--> open again, cool-down doubled up to the maximum
    half_open without an answer for breaker_probe_s (its worker died) --> another probe

While a breaker is not closed, deliveries are held (back to pending, due when it may
reopen) without spending an attempt: an outage of the provider is not the delivery's
fault. PostgreSQL holds the state: every worker already needs it, so no second store
can disagree or be down on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from router.core import metrics
from router.core.config import DeliveryConfig
from router.core.enums import BreakerState, Channel, OutcomeStatus
from router.delivery.contracts import Outcome
from router.store import models as m
from router.store.models import utcnow

B = cast(Table, m.ChannelBreaker.__table__)
log = logging.getLogger("herald.breaker")
NOT_ATTEMPTED = "not attempted"  # Outcome.retry details of sends never tried (no verdict)


@dataclass(frozen=True)
class Gate:
    """What a worker may send of a batch now: everything, one probe, or nothing until."""

    allowed: int | None  # None: all
    until: datetime | None = None  # the rest is held until then

    @property
    def open(self) -> bool:
        return self.allowed is not None

    @property
    def holds_all(self) -> bool:
        """Nothing may go now: the batch waits until ``until``."""
        return self.allowed == 0 and self.until is not None


ALL = Gate(None)


def gate(s: Session, channel: Channel, cfg: DeliveryConfig) -> Gate:
    """Ask the channel's breaker before claiming a batch."""
    if channel == Channel.BROWSER:  # the feed item is the record; nothing to protect
        return ALL
    row = s.execute(select(B).where(B.c.channel == channel)).first()
    if row is None or row.state == BreakerState.CLOSED:
        metrics.BREAKER_OPEN.labels(channel).set(0)
        return ALL
    metrics.BREAKER_OPEN.labels(channel).set(1)
    now = utcnow()
    if row.reopen_at is not None and row.reopen_at > now:
        return Gate(0, row.reopen_at)
    probe_until = now + timedelta(seconds=cfg.breaker_probe_s)
    won = s.execute(update(B).where(
        B.c.channel == channel, B.c.state != BreakerState.CLOSED, B.c.reopen_at <= now)
        .values(state=BreakerState.HALF_OPEN, reopen_at=probe_until, updated_at=now))
    if getattr(won, "rowcount", 0):
        _changed(channel, BreakerState.HALF_OPEN, row.failures, probe_until)
        return Gate(1, probe_until)
    return Gate(0, probe_until)


def observe(s: Session, channel: Channel, outcomes: Iterable[Outcome],
            cfg: DeliveryConfig) -> Gate:
    """Feed a recorded chunk's outcomes to the breaker: a send closes it, transient
    failures count towards opening it (sends never attempted say nothing). Returns what
    the rest of the batch may do."""
    sent = failed = 0
    for o in outcomes:
        sent += o.status == OutcomeStatus.SENT
        failed += o.status == OutcomeStatus.RETRY and not o.detail.startswith(NOT_ATTEMPTED)
    if channel == Channel.BROWSER or not (sent or failed) or (not failed and _clean(s, channel)):
        return ALL
    row = _locked(s, channel)
    if sent:
        if row.state != BreakerState.CLOSED or row.failures:
            _set(s, channel, state=BreakerState.CLOSED, failures=0, cooldown_s=0.0,
                 reopen_at=None)
            if row.state != BreakerState.CLOSED:
                _changed(channel, BreakerState.CLOSED, row.failures, None)
        return ALL
    return _count_failures(s, row, channel, failed, cfg)


def _count_failures(s: Session, row: Any, channel: Channel, failed: int,
                    cfg: DeliveryConfig) -> Gate:
    failures = row.failures + failed
    opens = (row.state == BreakerState.HALF_OPEN
             or (row.state == BreakerState.CLOSED and failures >= cfg.breaker_failures))
    if not opens:
        _set(s, channel, failures=failures)
        return ALL if row.state == BreakerState.CLOSED else Gate(0, row.reopen_at)
    cooldown = min(cfg.breaker_cooldown_max_s, row.cooldown_s * 2) if row.cooldown_s \
        else cfg.breaker_cooldown_s
    reopen_at = utcnow() + timedelta(seconds=cooldown)
    _set(s, channel, state=BreakerState.OPEN, failures=failures, cooldown_s=cooldown,
         reopen_at=reopen_at)
    _changed(channel, BreakerState.OPEN, failures, reopen_at)
    return Gate(0, reopen_at)


def _clean(s: Session, channel: Channel) -> bool:
    """Closed with no failure counted (or never moved): a send changes nothing, so it is
    judged without taking the row's lock, which every recording worker would queue on."""
    row = s.execute(select(B.c.state, B.c.failures).where(B.c.channel == channel)).first()
    return row is None or (row.state == BreakerState.CLOSED and not row.failures)


def _locked(s: Session, channel: Channel) -> Any:
    insert = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
    s.execute(insert(B).values(channel=str(channel), state=BreakerState.CLOSED, failures=0,
                               cooldown_s=0.0, updated_at=utcnow()).on_conflict_do_nothing())
    return s.execute(select(B).where(B.c.channel == channel).with_for_update()).one()


def _set(s: Session, channel: Channel, **values: Any) -> None:
    s.execute(update(B).where(B.c.channel == channel).values(updated_at=utcnow(), **values))


def _changed(channel: Channel, state: BreakerState, failures: int,
             until: datetime | None) -> None:
    metrics.BREAKER_CHANGES.labels(channel, state).inc()
    metrics.BREAKER_OPEN.labels(channel).set(int(state != BreakerState.CLOSED))
    log.warning("breaker." + state, extra={
        "channel": str(channel), "consecutive_failures": failures,
        "until": until.isoformat() if until else None})


def states(s: Session) -> dict[str, dict[str, Any]]:
    """Every breaker that ever moved (for operators: `herald deliveries breakers`)."""
    return {r.channel: {"state": r.state, "failures": r.failures, "cooldown_s": r.cooldown_s,
                        "reopen_at": r.reopen_at.isoformat() if r.reopen_at else None}
            for r in s.execute(select(B))}
