"""Operator views: what failed, and re-driving it after a fix."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from router.core.enums import Channel, DeliveryStatus, EventStatus
from router.delivery.deliveries import log_lines
from router.store import models as m
from router.store.models import utcnow


def failed(s: Session, tenant: str | None, limit: int) -> list[str]:
    lines: list[str] = []
    events = select(m.EventRow).where(m.EventRow.status == EventStatus.FAILED)
    deliveries = select(m.Delivery).where(m.Delivery.status == DeliveryStatus.FAILED)
    if tenant:
        events = events.where(m.EventRow.tenant_id == tenant)
        deliveries = deliveries.where(m.Delivery.tenant_id == tenant)
    for e in s.scalars(events.order_by(m.EventRow.pk.desc()).limit(limit)):
        lines.append(f"event     {e.tenant_id}/{e.event_id} ({e.type}) routing failed "
                     f"{e.attempts}x: {e.error}")
    for d in s.scalars(deliveries.order_by(m.Delivery.id.desc()).limit(limit)):
        lines.append(f"delivery  {d.id} {d.tenant_id} {d.channel} -> {d.receiver_kind} "
                     f"{d.receiver_id}: {d.last_error}")
    return lines


def reset_failed(s: Session, tenant: str | None) -> tuple[list[int], dict[Channel, list[int]]]:
    events = update(m.EventRow).where(m.EventRow.status == EventStatus.FAILED)
    if tenant:
        events = events.where(m.EventRow.tenant_id == tenant)
    pks = list(s.scalars(events.values(status=EventStatus.RECEIVED, attempts=0, error=None)
                         .returning(m.EventRow.pk)))
    query = select(m.Delivery).where(m.Delivery.status == DeliveryStatus.FAILED)
    if tenant:
        query = query.where(m.Delivery.tenant_id == tenant)
    by_channel: dict[Channel, list[int]] = {}
    for d in s.scalars(query.with_for_update()):
        d.status, d.attempts, d.next_attempt_at, d.updated_at = (
            DeliveryStatus.PENDING, 0, None, utcnow())
        by_channel.setdefault(Channel(d.channel), []).append(d.id)
    log_lines(s, ((i, DeliveryStatus.PENDING, "re-driven by an operator")
                  for ids in by_channel.values() for i in ids))
    return pks, by_channel
