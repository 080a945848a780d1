"""Publish and route: events in, feed items and delivery rows out (DESIGN §5).

``publish`` stores events idempotently (unique per tenant and event id) and
returns which are new; the caller enqueues a route job for them. ``route``
plans each stored event and writes, in the same transaction as the event's
status change, its feed items and pending delivery rows (the outbox); the ids
of the deliveries to start are returned for enqueueing after commit, and what the
browser channel announces after it (an ``Announcement``). Nothing in the route
transaction asks Redis: it holds the events' row locks.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, not_, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from router.core.enums import (
    DEFERRABLE,
    Channel,
    DeliveryStatus,
    EventStatus,
    ReceiverKind,
    Strategy,
)
from router.delivery import feed, folding, timers
from router.delivery.contracts import Announcement, Settled
from router.delivery.deliveries import log_lines
from router.delivery.feed import FeedWrite
from router.directory import directory
from router.directory.audience import DirectoryView
from router.directory.quiet import Deferral
from router.routing.events import Event
from router.routing.planner import PlannedReceiver, RoutingPlan, plan_many
from router.routing.texts import TextCatalogue, Texts, deep_link
from router.ruleset.engine import PinnedRules, RuleEngine
from router.ruleset.rulefile import RuleSet
from router.ruleset.timing import Fold, TimeStep
from router.store import models as m
from router.store.bulk import insert_rows
from router.store.db import dialect_of, one_of, one_of_param
from router.store.models import utcnow

log = logging.getLogger("herald.pipeline")
DELIVERIES = cast(Table, m.Delivery.__table__)
MAX_ROUTE_ATTEMPTS = 3
NO_CHAIN: list[str] = []  # shared by the rows that have none (JSON encoded once)


@dataclass
class Published:
    event_id: str
    pk: int
    new: bool
    status: str


def _insert_events(insert: Callable[[Table], Any]) -> Any:
    table = cast(Table, m.EventRow.__table__)
    return insert(table).on_conflict_do_nothing(
        index_elements=["tenant_id", "event_id"]).returning(table.c.event_id, table.c.pk)


# built once (the rows are parameters): SQLAlchemy's compiled cache is hit without a new
# statement and cache key per publish
_INSERT = {"postgresql": _insert_events(pg_insert), "sqlite": _insert_events(sqlite_insert)}


def publish(s: Session, tenant: str, events: list[Event]) -> list[Published]:
    """Store events; an id seen before (earlier, or earlier in the same batch) returns the
    stored event, unchanged."""
    if not events:
        return []
    now = utcnow()
    firsts = _first_of_each(events)
    rows = [dict(tenant_id=tenant, event_id=e.id, type=e.type,
                 payload={**e.as_doc(), "tenant": tenant}, status=EventStatus.RECEIVED,
                 received_at=now, attempts=0) for e in firsts]
    conn = s.connection()  # Core: the ORM's execution path costs more than the INSERT
    fresh = {event_id: pk for event_id, pk in conn.execute(_INSERT[conn.dialect.name], rows)}
    for event in firsts:
        if event.signups and event.id in fresh:  # a republished event signs nobody up again
            store_signups(s, tenant, event)
    seen = [e.id for e in firsts if e.id not in fresh]  # published before: answer what is stored
    table = cast(Table, m.EventRow.__table__)
    stored = {r.event_id: (r.pk, r.status) for r in s.execute(
        select(table.c.event_id, table.c.pk, table.c.status).where(
            table.c.tenant_id == tenant, one_of(s, table.c.event_id, seen)))} if seen else {}
    answered: set[str] = set()
    return [_answer(e.id, fresh, stored, answered) for e in events]


def _first_of_each(events: list[Event]) -> list[Event]:
    firsts: dict[str, Event] = {}
    for event in events:
        firsts.setdefault(event.id, event)
    return list(firsts.values())


def _answer(event_id: str, fresh: dict[str, int], stored: dict[str, tuple[int, str]],
            answered: set[str]) -> Published:
    first = event_id not in answered
    answered.add(event_id)
    if event_id in fresh:
        return Published(event_id, fresh[event_id], first, EventStatus.RECEIVED)
    pk, status = stored[event_id]
    return Published(event_id, pk, False, status)


def store_signups(s: Session, tenant: str, event: Event) -> None:
    """The event's code-user sign-ups, through the directory's one subscription path."""
    for position, signup in enumerate(event.signups):
        directory.put_subscription(s, tenant, signup.subscription(event, position))


# The claim's statements, built once (a statement built per job cost its construction and
# cache key every time: docs/decisions.md, "Routing's lookups are built once").
@cache
def _waiting_statement(dialect: str, with_tenant: bool) -> Select[int]:
    e = m.EventRow
    mine = one_of_param(dialect, e.pk, "pks")
    if with_tenant:
        mine = or_(mine, and_(e.tenant_id == bindparam("tenant"), e.attempts == 0))
    return select(e.pk).where(mine, e.status == EventStatus.RECEIVED).limit(1)


@cache
def _claim_statement(dialect: str) -> Select[m.EventRow]:
    e = m.EventRow
    query = select(e).where(one_of_param(dialect, e.pk, "pks"),
                            e.status == EventStatus.RECEIVED).order_by(e.pk)
    return query.with_for_update(skip_locked=True) if dialect == "postgresql" else query


@cache
def _top_up_statement() -> Select[m.EventRow]:
    """PostgreSQL: other waiting first-attempt events of these tenants, oldest first."""
    e = m.EventRow
    return (select(e).where(e.status == EventStatus.RECEIVED, e.attempts == 0,
                            one_of_param("postgresql", e.tenant_id, "tenants"),
                            not_(one_of_param("postgresql", e.pk, "taken")))
            .order_by(e.received_at, e.pk).limit(bindparam("room"))
            .with_for_update(skip_locked=True))


@dataclass
class RouteResult:
    routed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    start: dict[Channel, list[int]] = field(default_factory=lambda: defaultdict(list))
    later: dict[Channel, dict[int, datetime]] = field(  # timers (time steps, quiet hours): id -> due
        default_factory=lambda: defaultdict(dict))
    tenants: list[str] = field(default_factory=list)
    full: bool = False  # the claim took a whole batch: more of its tenants' events may wait
    announce: Announcement = field(default_factory=Announcement)  # the browser channel's part
    timings_ms: dict[str, float] = field(default_factory=dict)  # stage -> ms (for the log)

    def timed(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.timings_ms[stage] = round(self.timings_ms.get(stage, 0.0) + (now - since) * 1000, 1)
        return now


class EventRouter:
    """Routes stored events in batches: plan, render, write feed items and deliveries.

    The whole batch is planned with one directory view and written with set-based
    statements. If the batch fails, its transaction is rolled back and each of its events
    still waiting is claimed again and routed on its own in a savepoint, so a poison
    event fails alone and visibly.
    """

    def __init__(self, engine: RuleEngine, texts: TextCatalogue, links: dict[str, str],
                 batch: int = 100) -> None:
        self.engine = engine
        self.texts = texts
        self.links = links
        self.batch = batch  # events per route transaction, at most

    def route(self, s: Session, pks: list[int], between: Callable[[], None] | None = None,
              tenant: str | None = None) -> RouteResult:
        """Route these events (and others of their tenants waiting, see _claim; with
        `tenant`, that tenant's waiting events even if these were taken); `between` is
        called between planning and writing (a bulk job gives way to live ones)."""
        started = time.perf_counter()
        rows = self._claim(s, pks, tenant)
        claimed_ms = round((time.perf_counter() - started) * 1000, 1)
        taken = [r.pk for r in rows]
        try:  # no savepoint (two round trips per job): a failed batch rolls back instead
            result = self._route_batch(s, rows, between)
        except OperationalError:
            raise  # the database is gone: the whole message is retried later
        except Exception:  # noqa: BLE001 - fall back to one event at a time
            log.warning("route.batch_fallback", extra={"events": len(rows)}, exc_info=True)
            s.rollback()  # the batch's writes and its claim; what is still waiting, again:
            return self._route_each(s, list(s.scalars(  # (another job may have taken some)
                _claim_statement(dialect_of(s)), {"pks": taken})))
        result.timings_ms["claim"] = claimed_ms
        result.full = len(rows) >= self.batch
        return result

    @staticmethod
    def waiting(s: Session, pks: list[int], tenant: str | None = None) -> bool:
        """Whether any of these events (or, with `tenant`, any of its events on a first
        attempt) still waits for routing: a job whose events another job's top-up took has
        nothing to do, and need not wait for a route slot."""
        return s.scalar(_waiting_statement(dialect_of(s), tenant is not None),
                        {"pks": pks, "tenant": tenant}) is not None

    def _claim(self, s: Session, pks: list[int], tenant: str | None = None
               ) -> list[m.EventRow]:
        """Lock the job's events that still wait for routing, then top the batch up with
        other waiting first-attempt events of the same tenants (PostgreSQL, SKIP LOCKED):
        under a stream of single-event publishes one job routes many events at batch
        cost, and the jobs of the events it took find nothing left to do. Only the same
        tenants': a quiet tenant's job on the live lane must not take on a bursting
        tenant's backlog (fair lanes). Retried events wait for their own job, so a
        failing event keeps its backoff and cannot stall other batches. `tenant`: a job
        the route gate (workers.broker.RouteGate) let stand for that tenant's small
        publishes tops up from its events even when its own were taken."""
        dialect = dialect_of(s)
        rows = list(s.scalars(_claim_statement(dialect), {"pks": pks})) if pks else []
        if dialect != "postgresql":
            return rows
        room = self.batch - len(rows)
        tenants = {r.tenant_id for r in rows} | ({tenant} if tenant is not None else set())
        if room > 0 and self.batch > 1 and tenants:
            rows += s.scalars(_top_up_statement(), {"tenants": list(tenants), "room": room,
                                                    "taken": [r.pk for r in rows]})
        return rows

    def _failed(self, row: m.EventRow, exc: Exception, result: RouteResult) -> None:
        row.attempts += 1
        row.error = f"{type(exc).__name__}: {exc}"
        if row.attempts >= MAX_ROUTE_ATTEMPTS:
            row.status = EventStatus.FAILED
        result.failed.append(row.pk)
        log.error("route.failed", extra={"event_id": row.event_id, "tenant": row.tenant_id,
                                         "error": row.error, "attempts": row.attempts})

    def _route_batch(self, s: Session, rows: list[m.EventRow],
                     between: Callable[[], None] | None = None) -> RouteResult:
        with self.engine.pinned() as rules:  # one rule set version for the whole batch
            return self._route_pinned(s, rows, rules, between)

    def _route_pinned(self, s: Session, rows: list[m.EventRow], rules: PinnedRules,
                      between: Callable[[], None] | None = None) -> RouteResult:
        result = RouteResult()
        started = time.perf_counter()
        planned: list[tuple[m.EventRow, dict[str, Any], RoutingPlan]] = []
        by_tenant: dict[str, list[m.EventRow]] = defaultdict(list)
        for row in rows:
            by_tenant[row.tenant_id].append(row)
        for tenant, group in by_tenant.items():
            planned += self._plan_group(s, tenant, group, rules, result)
        result.tenants = sorted(by_tenant)
        started = result.timed("plan", started)
        if between is not None:
            between()
            started = result.timed("gave_way", started)
        self._write(s, planned, rules, result)
        result.timed("write", started)
        return result

    def _plan_group(self, s: Session, tenant: str, rows: list[m.EventRow], rules: PinnedRules,
                    result: RouteResult) -> list[tuple[m.EventRow, dict[str, Any], RoutingPlan]]:
        events: list[tuple[m.EventRow, Event]] = []
        for row in rows:
            try:
                events.append((row, Event.model_validate(row.payload)))
            except Exception as exc:  # noqa: BLE001 - a stored payload that no longer parses
                self._failed(row, exc, result)
        plans = plan_many([e for _, e in events], DirectoryView(s, tenant), rules)
        ok = []
        for (row, _event), outcome in zip(events, plans, strict=True):
            if isinstance(outcome, Exception):
                self._failed(row, outcome, result)
            else:
                ok.append((row, *outcome))
        return ok

    def _route_each(self, s: Session, rows: list[m.EventRow]) -> RouteResult:
        result = RouteResult()
        for row in rows:
            try:
                with s.begin_nested():
                    one = self._route_batch(s, [row])
            except Exception as exc:  # noqa: BLE001 - a poison event fails alone, visibly
                self._failed(row, exc, result)
                continue
            result.routed += one.routed
            result.failed += one.failed
            result.announce.merge(one.announce)
            for channel, ids in one.start.items():
                result.start[channel] += ids
            for channel, due in one.later.items():
                result.later[channel].update(due)
        return result

    # ----------------------------------------------------------------- writing

    def _write(self, s: Session, planned: list[tuple[m.EventRow, dict[str, Any], RoutingPlan]],
               rules: PinnedRules, result: RouteResult) -> None:
        result.announce.routed_at = utcnow()
        entries: list[feed.FeedEntry] = []
        renders: list[tuple[str, dict[str, Texts]]] = []
        for row, doc, plan in planned:
            link = deep_link(self.links, doc["subject"])
            rendered = self._render(doc, plan, rules.ruleset)
            renders.append((link, rendered))
            entries.append(feed.FeedEntry(row.tenant_id, row.pk, doc, [
                FeedWrite(str(r.kind), r.id, *self._texts(r, rendered), link)
                for r in plan.receivers
                if Channel.BROWSER in r.channels or r.kind == ReceiverKind.CODE_USER]))
        started = time.perf_counter()
        items = feed.write_many(s, entries)
        result.announce.quiet |= {(row.tenant_id, str(r.kind), r.id) for row, _doc, plan in planned
                                  for r in plan.receivers if _quiet(r)}
        result.timed("feed", started)
        waits: list[tuple[dict[str, Any], folding.Wait]] = []
        values = [v for (row, doc, plan), (link, rendered) in zip(planned, renders, strict=True)
                  for v in self._delivery_rows(row, doc, plan, rendered, items, link, result,
                                               waits)]
        folding.assign(s, result.announce.routed_at, waits)
        self._insert_deliveries(s, values, result)
        self._cancel(s, planned, rules.ruleset)
        now = result.announce.routed_at
        for row, _doc, plan in planned:
            row.status, row.routed_at, row.error = EventStatus.ROUTED, now, None
            row.attempts += 1
            row.plan = plan.stored()
            row.rules_version = rules.version
            result.routed.append(row.pk)

    def _cancel(self, s: Session, planned: list[tuple[m.EventRow, dict[str, Any], RoutingPlan]],
                ruleset: RuleSet) -> None:
        """Events of a `cancel_on` type skip their subject's pending delayed deliveries."""
        cancellers = {row.pk: (plan, timers.Canceller(
            row.tenant_id, row.pk, row.event_id, row.type,
            timers.subject_key(doc["subject"]["kind"], doc["subject"]["id"])))
            for row, doc, plan in planned if ruleset.cancels(row.type)}
        counts = timers.cancel(s, [c for _, c in cancellers.values()])
        for pk, (plan, _c) in cancellers.items():
            plan.notes.append(f"cancelled {counts.get(pk, 0)} delayed deliveries on this subject")

    def _render(self, doc: dict[str, Any], plan: RoutingPlan, ruleset: RuleSet
                ) -> dict[str, Texts]:
        spec = ruleset.events.get(doc["type"])
        fallback = spec.title if spec else doc["type"]
        rendered: dict[str, Texts] = {}
        for r in plan.receivers:
            lang = self.texts.pick_language(r.language)
            if lang not in rendered:
                rendered[lang] = self.texts.render(doc, lang, fallback)
        return rendered

    def _texts(self, r: PlannedReceiver, rendered: dict[str, Texts]) -> tuple[str, str]:
        texts = rendered[self.texts.pick_language(r.language)]
        return texts.title, texts.message

    def _delivery_rows(self, row: m.EventRow, doc: dict[str, Any], plan: RoutingPlan,
                       rendered: dict[str, Texts], items: dict[tuple[int, str, str], int],
                       link: str, result: RouteResult,
                       waits: list[tuple[dict[str, Any], folding.Wait]]
                       ) -> list[dict[str, Any]]:
        """One row per receiver and channel (first_success: the first step only). The
        texts a channel needs go in `content`. A browser delivery under `all` gets no
        row: it is settled here (the feed item is the delivery) and announced by the
        browser channel after the commit, which stores a row for the receivers it finds
        online; the activity view shows the others from the plan
        (``deliveries.settled_at_routing``)."""
        values = []
        now = result.announce.routed_at
        holds = {c: step for step in plan.timing for c in step.channels}
        folds = {c: fold for fold in plan.folds for c in fold.channels}
        for r in plan.receivers:
            kind = str(r.kind)
            item = items.get((row.pk, kind, r.id))
            first_success = r.strategy == Strategy.FIRST_SUCCESS
            channels = r.channels[:1] if first_success else r.channels
            if not first_success and Channel.BROWSER in channels:
                if item is not None:
                    result.announce.settled.append(Settled(row.pk, row.tenant_id, kind, r.id, item))
                channels = [c for c in channels if c != Channel.BROWSER]
            if not channels:
                continue
            lang = self.texts.pick_language(r.language)
            content = {"language": lang, "title": rendered[lang].title,
                       "message": rendered[lang].message, "link": link, "email": r.email,
                       "name": r.name, "created_at": now.isoformat()}
            if r.deferred is not None:
                content["quiet_until"] = r.deferred.label
                content["quiet_until_at"] = r.deferred.until.isoformat()
            chain = [str(c) for c in r.channels[1:]] if first_success else NO_CHAIN
            for channel in channels:
                values.append(dict(
                    tenant_id=row.tenant_id, event_pk=row.pk, receiver_kind=kind,
                    receiver_id=r.id, channel=str(channel), status=DeliveryStatus.PENDING,
                    strategy=str(r.strategy), step=0, chain=chain, feed_item_id=item,
                    content=content, attempts=0, next_attempt_at=_due(r, channel),
                    digest_key=None, throttle_key=None, created_at=now, updated_at=now))
                if channel in holds:
                    _hold(values[-1], holds[channel], row)
                elif (wait := _wait(r, channel, folds.get(channel), doc)) is not None:
                    if rendered[lang].digest:
                        values[-1]["content"] = {**content, "digest_title": rendered[lang].digest}
                    waits.append((values[-1], wait))
        return values

    def _insert_deliveries(self, s: Session, values: list[dict[str, Any]],
                           result: RouteResult) -> None:
        """The outbox rows. Their first history line ("pending: planned") is not written:
        ``deliveries.history`` derives it from the row's created_at (step 0)."""
        started = time.perf_counter()
        ids = insert_rows(s, DELIVERIES, values)
        result.timed("deliveries", started)
        deferred: list[tuple[int, str, str]] = []
        for did, v in zip(ids, values, strict=True):
            if v["next_attempt_at"] is not None:  # a timer: enqueued for its due time
                result.later[Channel(v["channel"])][did] = v["next_attempt_at"]
                if (note := folding.note_of(v["content"])) is not None:
                    deferred.append((did, DeliveryStatus.PENDING, note))
                elif "quiet_until" in v["content"] and v["channel"] in DEFERRABLE:
                    deferred.append((did, DeliveryStatus.PENDING, Deferral(
                        v["next_attempt_at"], v["content"]["quiet_until"]).note(v["channel"])))
            elif v["channel"] == Channel.BROWSER:  # first_success: the browser channel starts it
                result.announce.awaiting.append(did)
            else:
                result.start[Channel(v["channel"])].append(did)
        log_lines(s, deferred)


def _due(r: PlannedReceiver, channel: Channel) -> datetime | None:
    """When the row falls due: now (None), or when the receiver's quiet hours end."""
    return r.deferred.until if r.deferred is not None and channel in DEFERRABLE else None


def _wait(r: PlannedReceiver, channel: Channel, fold: Fold | None, doc: dict[str, Any]
          ) -> folding.Wait | None:
    """How this row may fold into a digest, first match wins: quiet hours, the user's email
    cadence, the event type's digest or throttle on this channel."""
    kind = str(r.kind)
    if r.deferred is not None and channel in DEFERRABLE:
        return folding.Wait(folding.QUIET, folding.quiet_key(channel, kind, r.id, r.deferred.until),
                            r.deferred.until, r.deferred.label)
    if r.cadence is not None and channel == Channel.EMAIL:
        return folding.Wait(folding.CADENCE, folding.cadence_key(kind, r.id, r.cadence.until),
                            r.cadence.until, r.cadence.label)
    if fold is None:
        return None
    if fold.kind == "throttle":
        return folding.Wait(folding.THROTTLE, folding.throttle_key(
            channel, kind, r.id, fold.key_of(doc)), window_s=fold.window_s, limit=fold.limit)
    return folding.Wait(folding.DIGEST, folding.window_key(channel, kind, r.id, fold.key_of(doc)),
                        window_s=fold.window_s)


def _hold(value: dict[str, Any], step: TimeStep, row: m.EventRow) -> None:
    """A delay or escalate step: the row is a timer, due `after` from now."""
    due = value["created_at"] + timedelta(seconds=step.after_s)
    subject = row.payload["subject"]
    quiet_end = value["next_attempt_at"]  # quiet hours may hold it longer: the later wins
    value["next_attempt_at"] = max(due, quiet_end) if quiet_end is not None else due
    value["content"] = timers.held_content(value["content"], step, due,
                                           timers.subject_key(subject["kind"], subject["id"]))


def _quiet(r: PlannedReceiver) -> bool:
    """A feed item is written for this receiver, but no browser step announces it now."""
    if Channel.BROWSER not in r.channels:
        return r.kind == ReceiverKind.CODE_USER
    return r.strategy == Strategy.FIRST_SUCCESS and r.channels[0] != Channel.BROWSER
