"""Publish and route: events in, feed items and delivery rows out (DESIGN §5).

``publish`` stores events idempotently (unique per tenant and event id) and
returns which are new; the caller enqueues a route job for them. ``route``
plans each stored event and writes, in the same transaction as the event's
status change, its feed items and pending delivery rows (the outbox); the ids
of the deliveries to start are returned for enqueueing after commit.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from router import feed
from router import models as m
from router.audience import DirectoryView
from router.deliveries import log_lines
from router.engine import RuleEngine
from router.enums import Channel, DeliveryStatus, EventStatus, ReceiverKind, Strategy
from router.events import Event
from router.feed import FeedWrite
from router.models import utcnow
from router.planner import PlannedReceiver, RoutingPlan, enrich, plan_matched
from router.texts import TextCatalogue, Texts, deep_link

log = logging.getLogger("herald.pipeline")
MAX_ROUTE_ATTEMPTS = 3


@dataclass
class Published:
    event_id: str
    pk: int
    new: bool
    status: str


def publish(s: Session, tenant: str, events: list[Event]) -> list[Published]:
    """Store events; an id seen before returns the stored event, unchanged."""
    rows = [dict(tenant_id=tenant, event_id=e.id, type=e.type,
                 payload={**e.as_doc(), "tenant": tenant}, status=EventStatus.RECEIVED,
                 received_at=utcnow(), attempts=0) for e in events]
    dialect = s.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    new_ids: set[str] = set()
    if rows:
        stmt = insert(m.EventRow).values(rows).on_conflict_do_nothing(
            index_elements=["tenant_id", "event_id"]).returning(m.EventRow.event_id)
        new_ids = set(s.scalars(stmt))
    ids = [e.id for e in events]
    stored = {r.event_id: r for r in s.scalars(select(m.EventRow).where(
        m.EventRow.tenant_id == tenant, m.EventRow.event_id.in_(ids)))}
    return [Published(i, stored[i].pk, i in new_ids, stored[i].status) for i in ids]


@dataclass
class RouteResult:
    routed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    start: dict[Channel, list[int]] = field(default_factory=lambda: defaultdict(list))


class Router:
    """Routes stored events: plan, render, write feed items and deliveries."""

    def __init__(self, engine: RuleEngine, texts: TextCatalogue, links: dict[str, str]) -> None:
        self.engine = engine
        self.texts = texts
        self.links = links

    def route(self, s: Session, pks: list[int]) -> RouteResult:
        result = RouteResult()
        rows = self._claim(s, pks)
        views: dict[str, DirectoryView] = {}
        for row in rows:
            view = views.setdefault(row.tenant_id, DirectoryView(s, row.tenant_id))
            try:
                with s.begin_nested():
                    started = self._route_one(s, row, view)
            except Exception as exc:  # noqa: BLE001 - a poison event fails alone, visibly
                self._failed(row, exc)
                result.failed.append(row.pk)
                log.exception("route.failed", extra={"event_id": row.event_id,
                                                     "tenant": row.tenant_id})
                continue
            result.routed.append(row.pk)
            for channel, ids in started.items():
                result.start[channel] += ids
        return result

    def _claim(self, s: Session, pks: list[int]) -> list[m.EventRow]:
        query = select(m.EventRow).where(m.EventRow.pk.in_(pks),
                                         m.EventRow.status == EventStatus.RECEIVED)
        if s.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(s.scalars(query.order_by(m.EventRow.pk)))

    def _failed(self, row: m.EventRow, exc: Exception) -> None:
        row.attempts += 1
        row.error = f"{type(exc).__name__}: {exc}"
        if row.attempts >= MAX_ROUTE_ATTEMPTS:
            row.status = EventStatus.FAILED

    def _route_one(self, s: Session, row: m.EventRow, view: DirectoryView
                   ) -> dict[Channel, list[int]]:
        event = Event.model_validate(row.payload)
        doc = enrich(event, view)
        ruleset = self.engine.ruleset
        fired = set(self.engine.match(doc))
        plan = plan_matched(doc, [r for r in ruleset.rules if r.id in fired], ruleset, view)
        started = self._write(s, row, doc, plan)
        row.status, row.routed_at, row.error = EventStatus.ROUTED, utcnow(), None
        row.attempts += 1
        row.plan = plan.as_dict()
        return started

    def _write(self, s: Session, row: m.EventRow, doc: dict[str, Any], plan: RoutingPlan
               ) -> dict[Channel, list[int]]:
        spec = self.engine.ruleset.events.get(doc["type"])
        fallback = spec.title if spec else doc["type"]
        link = deep_link(self.links, doc["subject"])
        rendered: dict[str, Texts] = {}
        for r in plan.receivers:
            lang = self.texts.pick_language(r.language)
            if lang not in rendered:
                rendered[lang] = self.texts.render(doc, lang, fallback)
        writes = [FeedWrite(str(r.kind), r.id, *self._texts(r, rendered), link)
                  for r in plan.receivers if Channel.BROWSER in r.channels
                  or r.kind == ReceiverKind.CODE_USER]
        items = feed.write_items(s, row.tenant_id, row.pk, doc, writes)
        return self._deliveries(s, row, plan, rendered, items, link)

    def _texts(self, r: PlannedReceiver, rendered: dict[str, Texts]) -> tuple[str, str]:
        texts = rendered[self.texts.pick_language(r.language)]
        return texts.title, texts.message

    def _deliveries(self, s: Session, row: m.EventRow, plan: RoutingPlan,
                    rendered: dict[str, Texts], items: dict[tuple[str, str], int], link: str
                    ) -> dict[Channel, list[int]]:
        values = []
        for r in plan.receivers:
            lang = self.texts.pick_language(r.language)
            content = {"language": lang, "title": rendered[lang].title,
                       "message": rendered[lang].message, "link": link, "email": r.email,
                       "name": r.name, "created_at": utcnow().isoformat()}
            first_success = r.strategy == Strategy.FIRST_SUCCESS
            steps = r.channels[:1] if first_success else r.channels
            for channel in steps:
                values.append(dict(
                    tenant_id=row.tenant_id, event_pk=row.pk, receiver_kind=str(r.kind),
                    receiver_id=r.id, channel=str(channel), status=DeliveryStatus.PENDING,
                    strategy=str(r.strategy), step=0,
                    chain=[str(c) for c in r.channels[1:]] if first_success else [],
                    feed_item_id=items.get((str(r.kind), r.id)), content=content,
                    attempts=0,
                    created_at=utcnow(), updated_at=utcnow()))
        if not values:
            return {}
        started: dict[Channel, list[int]] = defaultdict(list)
        rows = s.execute(m.Delivery.__table__.insert().returning(
            m.Delivery.id, m.Delivery.channel, m.Delivery.step), values).all()
        for did, channel, _step in rows:
            started[Channel(channel)].append(did)
        log_lines(s, ((did, DeliveryStatus.PENDING, "planned") for did, _c, _s in rows))
        return started
