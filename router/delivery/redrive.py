"""Failures and re-driving them: failed deliveries grouped by channel and error, and
putting failed deliveries (back to pending) and failed events (back to received) on
their way again. `herald deliveries retry` and the console's retry buttons share it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from router.core.enums import Channel, DeliveryStatus, EventStatus
from router.delivery.deliveries import log_lines
from router.store import models as m
from router.store.models import utcnow

REDRIVEN = "re-driven by an operator"


@dataclass
class FailedGroup:
    """Failed deliveries of one channel with one error."""

    channel: str
    error: str
    count: int
    rows: list[Any] = field(default_factory=list)  # the newest, with their events


def failed_groups(s: Session, tenant: str, per_group: int = 20) -> list[FailedGroup]:
    """The tenant's failed deliveries by (channel, error), largest group first."""
    error = func.coalesce(m.Delivery.last_error, "")
    counted = s.execute(select(m.Delivery.channel, error, func.count()).where(
        m.Delivery.tenant_id == tenant, m.Delivery.status == DeliveryStatus.FAILED)
        .group_by(m.Delivery.channel, error).order_by(func.count().desc()).limit(100)).all()
    groups = [FailedGroup(channel, err, n) for channel, err, n in counted]
    for group in groups:
        group.rows = list(s.execute(
            select(m.Delivery.id, m.Delivery.receiver_kind, m.Delivery.receiver_id,
                   m.Delivery.attempts, m.Delivery.provider_response, m.Delivery.updated_at,
                   m.EventRow.event_id, m.EventRow.type)
            .join(m.EventRow, m.EventRow.pk == m.Delivery.event_pk)
            .where(m.Delivery.tenant_id == tenant, m.Delivery.status == DeliveryStatus.FAILED,
                   m.Delivery.channel == group.channel, error == group.error)
            .order_by(m.Delivery.id.desc()).limit(per_group)))
    return groups


def failed_events(s: Session, tenant: str | None, limit: int = 100) -> list[m.EventRow]:
    query = select(m.EventRow).where(m.EventRow.status == EventStatus.FAILED)
    if tenant:
        query = query.where(m.EventRow.tenant_id == tenant)
    return list(s.scalars(query.order_by(m.EventRow.pk.desc()).limit(limit)))


def reroute(s: Session, tenant: str | None, event_ids: Iterable[str] | None = None) -> list[int]:
    """Failed events back to `received` (all of them, or these ids): their pks to enqueue."""
    events = update(m.EventRow).where(m.EventRow.status == EventStatus.FAILED)
    if tenant:
        events = events.where(m.EventRow.tenant_id == tenant)
    if event_ids is not None:
        events = events.where(m.EventRow.event_id.in_(list(event_ids)))
    return list(s.scalars(events.values(status=EventStatus.RECEIVED, attempts=0, error=None)
                          .returning(m.EventRow.pk)))


def redrive(s: Session, tenant: str | None, ids: Iterable[int] | None = None,
            channel: str | None = None, error: str | None = None) -> dict[Channel, list[int]]:
    """Failed deliveries back to `pending` with a fresh attempt budget: all of them, these
    ids, or one (channel, error) group. Ids of another tenant or not failed are ignored."""
    query = select(m.Delivery).where(m.Delivery.status == DeliveryStatus.FAILED)
    if tenant:
        query = query.where(m.Delivery.tenant_id == tenant)
    if ids is not None:
        query = query.where(m.Delivery.id.in_(list(ids)))
    if channel is not None:
        query = query.where(m.Delivery.channel == channel,
                            func.coalesce(m.Delivery.last_error, "") == (error or ""))
    by_channel: dict[Channel, list[int]] = {}
    for d in s.scalars(query.with_for_update()):
        d.status, d.attempts, d.next_attempt_at, d.updated_at = (
            DeliveryStatus.PENDING, 0, None, utcnow())
        by_channel.setdefault(Channel(d.channel), []).append(d.id)
    log_lines(s, ((i, DeliveryStatus.PENDING, REDRIVEN)
                  for found in by_channel.values() for i in found))
    return by_channel
