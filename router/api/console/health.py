"""Health at a glance: queue depths, deliveries per channel per minute, failure rate,
timers and their lag, breakers; the quantities /metrics exports, counted for this
tenant from the database (the /metrics counters add up every tenant and start at zero
with each process), beside the host's own /metrics totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.api.console.base import json_or_page, routes
from router.api.console.session import AdminDep
from router.api.deps import RuntimeDep
from router.core.enums import Channel, DeliveryStatus, Queue
from router.core.metrics import render
from router.store import models as m
from router.store.models import utcnow

MINUTES = 30
CHART_W, CHART_H = 300, 60


@dataclass
class Chart:
    """One channel's deliveries per minute as bars (sent below, failed stacked above)."""

    channel: str
    sent: list[int] = field(default_factory=lambda: [0] * MINUTES)
    failed: list[int] = field(default_factory=lambda: [0] * MINUTES)

    @property
    def peak(self) -> int:
        return max([s + f for s, f in zip(self.sent, self.failed, strict=True)] + [1])

    def bars(self) -> list[dict[str, float]]:
        width = CHART_W / MINUTES
        scale = CHART_H / self.peak
        return [{"x": round(i * width, 1), "w": round(width - 1, 1),
                 "sent": round(s * scale, 1), "failed": round(f * scale, 1), "n_sent": s,
                 "n_failed": f, "ago": MINUTES - i}
                for i, (s, f) in enumerate(zip(self.sent, self.failed, strict=True))]


def outcomes(s: Session, tenant: str, since: datetime) -> list[Any]:
    """(channel, status, at) of every sent or failed line of the tenant since then."""
    log = m.DeliveryLog
    return list(s.execute(select(m.Delivery.channel, log.status, log.at)
                          .join(m.Delivery, m.Delivery.id == log.delivery_id)
                          .where(m.Delivery.tenant_id == tenant, log.at >= since,
                                 log.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED]))
                          .limit(200_000)))


def charts(lines: list[Any], now: datetime) -> list[Chart]:
    found = {str(c): Chart(str(c)) for c in Channel}
    for channel, status, at in lines:
        slot = MINUTES - 1 - int((now - at).total_seconds() // 60)
        if 0 <= slot < MINUTES and channel in found:
            bucket = found[channel].sent if status == DeliveryStatus.SENT else found[channel].failed
            bucket[slot] += 1
    return list(found.values())


def failure_rates(lines: list[Any]) -> dict[str, dict[str, Any]]:
    rates: dict[str, dict[str, Any]] = {}
    for channel, status, _at in lines:
        row = rates.setdefault(channel, {"sent": 0, "failed": 0})
        row["sent" if status == DeliveryStatus.SENT else "failed"] += 1
    for row in rates.values():
        row["rate"] = round(100 * row["failed"] / max(1, row["sent"] + row["failed"]), 1)
    return rates


def timers(s: Session, tenant: str, now: datetime) -> dict[str, Any]:
    waiting = (m.Delivery.tenant_id == tenant, m.Delivery.status == DeliveryStatus.PENDING,
               m.Delivery.next_attempt_at.is_not(None))
    pending = s.scalar(select(func.count()).where(*waiting, m.Delivery.next_attempt_at > now))
    due, oldest = s.execute(select(func.count(), func.min(m.Delivery.next_attempt_at)).where(
        *waiting, m.Delivery.next_attempt_at <= now)).one()
    lag = (now - oldest).total_seconds() if oldest else 0.0
    return {"pending": pending or 0, "due": due or 0, "lag_s": round(lag, 1)}


def metrics_totals() -> dict[str, dict[str, float]]:
    """herald_deliveries_total by channel and status, as /metrics exports it."""
    body, _media = render()
    totals: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "herald_deliveries":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    channel = totals.setdefault(sample.labels["channel"], {})
                    channel[sample.labels["status"]] = sample.value
    return totals


@routes.get("/health")
def health(request: Request, runtime: RuntimeDep, admin: AdminDep) -> Response:
    now = utcnow()
    with runtime.db.session() as s:
        lines = outcomes(s, admin.tenant, now - timedelta(hours=1))
        timing = timers(s, admin.tenant, now)
        breakers = [{"channel": b.channel, "state": b.state, "failures": b.failures}
                    for b in s.scalars(select(m.ChannelBreaker).order_by(m.ChannelBreaker.channel))]
    queues = {str(q): runtime.workers.queue_depth(q) for q in Queue if q != Queue.CONTROL}
    recent = [line for line in lines if line[2] >= now - timedelta(minutes=MINUTES)]
    found = charts(recent, now)
    rates = failure_rates(lines)
    totals = metrics_totals()
    data = {"queues": queues, "per_minute": {c.channel: {"sent": c.sent, "failed": c.failed}
                                             for c in found},
            "failure_rate": rates, "timers": timing, "breakers": breakers, "metrics": totals}
    return json_or_page(request, data, "health.html", admin, queues=queues, charts=found,
                        rates=rates, timers=timing, breakers=breakers, totals=totals,
                        minutes=MINUTES, width=CHART_W, height=CHART_H)
