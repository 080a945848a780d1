"""Operator views: what failed, and re-driving it after a fix."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.core.enums import Channel, DeliveryStatus
from router.delivery import redrive
from router.store import models as m


def failed(s: Session, tenant: str | None, limit: int) -> list[str]:
    lines: list[str] = []
    deliveries = select(m.Delivery).where(m.Delivery.status == DeliveryStatus.FAILED)
    if tenant:
        deliveries = deliveries.where(m.Delivery.tenant_id == tenant)
    for e in redrive.failed_events(s, tenant, limit):
        lines.append(f"event     {e.tenant_id}/{e.event_id} ({e.type}) routing failed "
                     f"{e.attempts}x: {e.error}")
    for d in s.scalars(deliveries.order_by(m.Delivery.id.desc()).limit(limit)):
        lines.append(f"delivery  {d.id} {d.tenant_id} {d.channel} -> {d.receiver_kind} "
                     f"{d.receiver_id}: {d.last_error}")
    return lines


def reset_failed(s: Session, tenant: str | None) -> tuple[list[int], dict[Channel, list[int]]]:
    return redrive.reroute(s, tenant), redrive.redrive(s, tenant)
