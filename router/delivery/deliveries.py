"""The delivery state machine: pending -> sending -> sent | failed | skipped.

Every move is a guarded UPDATE (``WHERE status = <expected>``), so two workers
holding the same message can never both send one delivery: only the one whose
claim changed the row goes on. Moves are set-based (one statement per batch)
and each appends a line to ``delivery_log``, the history the activity view
shows. ``first_success`` sequences advance here: a step that fails, gives up
retrying, or is not acknowledged creates the next step's delivery.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any, cast

from sqlalchemy import Executable, Select, Table, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from router.core.config import DeliveryConfig
from router.core.enums import (
    DEFERRABLE,
    Channel,
    DeliveryStatus,
    EventStatus,
    OutcomeStatus,
    ReceiverKind,
    Strategy,
)
from router.delivery import folding
from router.delivery.contracts import DeliveryContent, Job, Outcome, Settled, StoredEvent
from router.store import models as m
from router.store.bulk import insert_rows
from router.store.db import core_read, dialect_of, one_of, one_of_param
from router.store.models import utcnow

D = cast(Table, m.Delivery.__table__)
LOG = cast(Table, m.DeliveryLog.__table__)
PLANNED = "planned"
# a browser delivery under `all` is settled at routing (no row, no attempt): the feed item is
# the whole delivery; a row is stored only for a receiver the browser channel found online
# after the commit (``store_announced``)
NO_SESSION = "no open session: the feed item is the record"
ACKED = "acknowledged by a live session"


def log_lines(s: Session, lines: Iterable[tuple[int, str, str]]) -> None:
    """Append (delivery id, status, detail) lines to the history, in one INSERT."""
    now = utcnow()
    rows = [{"delivery_id": d, "status": str(st), "detail": detail, "at": now}
            for d, st, detail in lines]
    insert_rows(s, LOG, rows, with_ids=False)


def claim(s: Session, ids: list[int], channel: Channel, lease_s: float,
          worker: str | None = None) -> list[Any]:
    """Move due pending deliveries to sending under a lease, in the name of ``worker``;
    returns only the rows this call moved. Rows of a digest are left to
    ``digests.gather``, which claims a digest's rows together. Until the lease ends (or the worker's
    heartbeat stops) the sweeper leaves them to this worker."""
    now = utcnow()
    rows = list(s.execute(
        update(D).where(one_of(s, D.c.id, ids), D.c.channel == channel,
                        D.c.status == DeliveryStatus.PENDING, D.c.digest_key.is_(None),
                        or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= now))
        .values(status=DeliveryStatus.SENDING, attempts=D.c.attempts + 1, updated_at=now,
                lease_until=now + timedelta(seconds=lease_s), worker_id=worker)
        .returning(*D.c)))
    log_lines(s, ((r.id, DeliveryStatus.SENDING, f"attempt {r.attempts}") for r in rows))
    return rows


def waiting(s: Session, ids: list[int], channel: Channel) -> dict[int, datetime]:
    """Pending deliveries among ``ids`` that have a due time: a message that arrived
    before it (a retry's, a breaker hold's) must be put back for then, or the delivery
    waits for the sweeper."""
    return {did: due for did, due in s.execute(select(D.c.id, D.c.next_attempt_at).where(
        one_of(s, D.c.id, ids), D.c.channel == channel, D.c.status == DeliveryStatus.PENDING,
        D.c.next_attempt_at.is_not(None)))}


def defer(s: Session, ids: list[int], channel: Channel, until: datetime) -> list[int]:
    """Pending deliveries due before ``until`` wait until then (the channel's breaker is
    open); nothing is claimed, no attempt spent."""
    return list(s.scalars(
        update(D).where(one_of(s, D.c.id, ids), D.c.channel == channel,
                        D.c.status == DeliveryStatus.PENDING,
                        or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at < until))
        .values(next_attempt_at=until, updated_at=utcnow()).returning(D.c.id)))


def hold(s: Session, ids: list[int], until: datetime, why: str) -> list[int]:
    """Put claimed deliveries back to pending until ``until`` without spending an attempt
    (the channel's breaker is open: the provider is down, not the delivery)."""
    held = list(s.scalars(
        update(D).where(one_of(s, D.c.id, ids), D.c.status == DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.PENDING, attempts=D.c.attempts - 1, next_attempt_at=until,
                lease_until=None, worker_id=None, updated_at=utcnow()).returning(D.c.id)))
    log_lines(s, ((i, DeliveryStatus.PENDING, why) for i in held))
    return held


def store_announced(s: Session, settled: list[Settled], status: DeliveryStatus, detail: str,
                    routed_at: datetime) -> list[int]:
    """Rows for browser deliveries settled at routing and announced after the commit: `sent`
    (published live) or `pending` (the publish failed: the queue retries). Created at routing
    time, so the history's "pending: planned" line is the event's; sent adds its own line."""
    now = utcnow()
    sent = status == DeliveryStatus.SENT
    ids = insert_rows(s, D, [dict(
        tenant_id=t.tenant, event_pk=t.event_pk, receiver_kind=t.receiver_kind,
        receiver_id=t.receiver_id, channel=str(Channel.BROWSER), status=str(status),
        strategy=str(Strategy.ALL), step=0, chain=[], feed_item_id=t.feed_item_id, content={},
        attempts=int(sent), provider_response=detail if sent else None, created_at=routed_at,
        updated_at=now) for t in settled])
    if sent:
        log_lines(s, ((i, DeliveryStatus.SENT, detail) for i in ids))
    return ids


@cache
def _payloads_statement(dialect: str) -> Executable:
    return select(m.EventRow.pk, m.EventRow.payload).where(
        one_of_param(dialect, m.EventRow.pk, "pks"))


def jobs_for(s: Session, rows: list[Any]) -> list[Job]:
    # only the payload: loading whole EventRows also fetched and decoded each event's
    # stored routing plan (MBs for a 50k-receiver fan-out) once per delivery batch
    events = {pk: payload for pk, payload in core_read(
        s, _payloads_statement(dialect_of(s)), {"pks": list({r.event_pk for r in rows})})}
    return [Job(id=r.id, tenant=r.tenant_id, channel=Channel(r.channel),
                receiver_kind=ReceiverKind(r.receiver_kind), receiver_id=r.receiver_id,
                strategy=Strategy(r.strategy), attempts=r.attempts,
                content=cast(DeliveryContent, dict(r.content)),
                event=cast(StoredEvent, events.get(r.event_pk, {})),
                feed_item_id=r.feed_item_id) for r in rows]


def channels_of(s: Session, ids: list[int]) -> dict[Channel, list[int]]:
    """These deliveries' ids by channel."""
    found: dict[Channel, list[int]] = {}
    for did, channel in s.execute(select(m.Delivery.id, m.Delivery.channel)
                                  .where(one_of(s, m.Delivery.id, ids))):
        found.setdefault(Channel(channel), []).append(did)
    return found


@dataclass
class Recorded:
    """What the worker must enqueue after recording a batch's outcomes."""

    retry: dict[float, list[int]] = field(default_factory=dict)  # delay s -> ids
    next_steps: dict[Channel, list[int]] = field(default_factory=dict)
    later: dict[Channel, dict[int, datetime]] = field(default_factory=dict)  # id -> due time
    await_ack: list[int] = field(default_factory=list)


def backoff(attempts: int, cfg: DeliveryConfig, retry_after: float | None) -> float:
    """Bounded exponential backoff with equal jitter (half fixed, so the retry window is
    spent predictably); a provider's Retry-After wins if longer."""
    ceiling = max(cfg.backoff_min_s, min(cfg.backoff_max_s,
                                         cfg.backoff_min_s * 2 ** max(attempts - 1, 0)))
    delay = random.uniform(max(cfg.backoff_min_s, ceiling / 2), ceiling)
    return max(delay, retry_after or 0.0)


def _retry_refused(row: Any, delay: float, cfg: DeliveryConfig) -> str:
    """Why a retry is not scheduled ("" when it is): attempts or the retry window used up."""
    if row.attempts >= cfg.max_attempts:
        return f"gave up after {row.attempts} attempts"
    age = (utcnow() - row.created_at).total_seconds()
    if age + delay > cfg.retry_window_s:
        return (f"gave up after {row.attempts} attempts: the retry window of "
                f"{cfg.retry_window_s:g}s ran out")
    return ""


@dataclass
class _Batch:
    """Set-based changes collected while applying outcomes, written at the end."""

    updates: list[dict[str, Any]] = field(default_factory=list)
    logs: list[tuple[int, str, str]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    leases: list[dict[str, Any]] = field(default_factory=list)
    todo: Recorded = field(default_factory=Recorded)

    def change(self, row: Any, status: str, log: str, **values: Any) -> None:
        self.updates.append({"b_id": row.id, "status": status, "last_error": row.last_error,
                             "provider_response": row.provider_response,
                             "next_attempt_at": None, "lease_until": None, "worker_id": None,
                             **values})
        self.logs.append((row.id, status, log))


def _locked(s: Session, ids: Iterable[int], *where: Any) -> list[Any]:
    return list(s.execute(select(D).where(one_of(s, D.c.id, list(ids)),
                                          D.c.status == DeliveryStatus.SENDING, *where)
                          .with_for_update()))


def record(s: Session, outcomes: dict[int, Outcome], cfg: DeliveryConfig,
           worker: str | None = None) -> Recorded:
    """Apply each outcome to its delivery (still in ``sending``, claimed by ``worker``);
    plan follow-up work. A delivery released from a worker taken for dead and claimed by
    another is left to its new owner."""
    batch = _Batch()
    dialect = s.get_bind().dialect.name
    claimed = s.connection().execute(_claimed(dialect, bool(worker)),
                                     {"ids": list(outcomes), "worker": worker})
    for row in claimed:
        _apply(batch, row, outcomes[row.id], cfg)
    _write(s, batch)
    return batch.todo


@lru_cache(maxsize=4)  # run for every few mails sent: built once, not per call
def _claimed(dialect: str, by_worker: bool) -> Select[Any]:
    """Deliveries among :ids still being sent (by :worker), locked."""
    mine = [D.c.worker_id == bindparam("worker")] if by_worker else []
    return select(D).where(one_of_param(dialect, D.c.id, "ids"),
                           D.c.status == DeliveryStatus.SENDING, *mine).with_for_update()


def _apply(batch: _Batch, row: Any, outcome: Outcome, cfg: DeliveryConfig) -> None:
    response = outcome.provider_ref or outcome.detail or row.provider_response
    if outcome.status == OutcomeStatus.SENT:
        note = (f"{outcome.detail}; sequence ended here, not tried: {', '.join(row.chain)}"
                if row.strategy == Strategy.FIRST_SUCCESS and row.chain else outcome.detail)
        batch.change(row, DeliveryStatus.SENT, note, provider_response=response)
    elif outcome.status == OutcomeStatus.AWAITING_ACK:
        batch.logs.append((row.id, DeliveryStatus.SENDING, outcome.detail))
        batch.todo.await_ack.append(row.id)
        batch.leases.append({"b_id": row.id, "lease_until": utcnow() + timedelta(
            seconds=cfg.presence_window_s + cfg.sweep_after_s)})
    elif outcome.status == OutcomeStatus.RETRY:
        _retry(batch, row, outcome, response, cfg)
    else:
        detail = f"gone: {outcome.detail}" if outcome.status == OutcomeStatus.GONE \
            else outcome.detail
        _fail(batch, row, detail, response)


def _retry(batch: _Batch, row: Any, outcome: Outcome, response: str | None,
           cfg: DeliveryConfig) -> None:
    delay = backoff(row.attempts, cfg, outcome.retry_after)
    refused = _retry_refused(row, delay, cfg)
    if refused:
        _fail(batch, row, f"{refused}: {outcome.detail}", response)
        return
    batch.change(row, DeliveryStatus.PENDING, f"retry in {delay:.1f}s: {outcome.detail}",
                 last_error=outcome.detail, provider_response=response,
                 next_attempt_at=utcnow() + timedelta(seconds=delay))
    # rounded up: a message due before its row is due finds nothing to claim
    batch.todo.retry.setdefault(math.ceil(delay * 10) / 10, []).append(row.id)


def _fail(batch: _Batch, row: Any, detail: str, response: str | None) -> None:
    batch.change(row, DeliveryStatus.FAILED, detail, last_error=detail,
                 provider_response=response)
    _next_step(batch, row, detail)


def _next_step(batch: _Batch, row: Any, why: str) -> None:
    """first_success: the step failed, so the next channel in the chain is tried."""
    if row.strategy != Strategy.FIRST_SUCCESS or not row.chain:
        return
    due = due_after_quiet(row.content, row.chain[0])
    quiet = f"; {row.chain[0]} deferred by quiet hours until {row.content['quiet_until']}" \
        if due else ""
    batch.steps.append({
        "tenant_id": row.tenant_id, "event_pk": row.event_pk, "receiver_kind": row.receiver_kind,
        "receiver_id": row.receiver_id, "channel": row.chain[0],
        "status": DeliveryStatus.PENDING, "strategy": row.strategy, "step": row.step + 1,
        "chain": list(row.chain[1:]), "feed_item_id": row.feed_item_id, "content": row.content,
        "attempts": 0, "next_attempt_at": due, "created_at": utcnow(), "updated_at": utcnow(),
        "digest_key": folding.quiet_key(row.chain[0], row.receiver_kind, row.receiver_id, due)
        if due else None,
        "_why": f"step {row.step + 1}: tried because {row.channel} did not succeed ({why})"
                f"{quiet}", "_from": row.id})


def due_after_quiet(content: Any, channel: str) -> datetime | None:
    """When a delivery created after routing (a sequence's later step) may go: the end of
    the quiet hours routing found its receiver in (stored in its content), if still ahead."""
    at = content.get("quiet_until_at") if channel in DEFERRABLE else None
    due = datetime.fromisoformat(at) if at else None
    return due if due is not None and due > utcnow() else None


# a status move of claimed deliveries, by id (executemany: one parameter set per row)
_MOVE = update(D).where(D.c.id == bindparam("b_id"), D.c.status == DeliveryStatus.SENDING) \
    .values(updated_at=bindparam("b_now"))


def _write(s: Session, batch: _Batch) -> None:
    if batch.leases:
        # the expiry message owns an awaiting step now, not the worker that published it
        s.execute(update(D).where(D.c.id == bindparam("b_id"))
                  .values(lease_until=bindparam("lease_until"), worker_id=None)
                  .execution_options(synchronize_session=False), batch.leases)
    if batch.updates:
        now = utcnow()
        s.connection().execute(_MOVE, [{**u, "b_now": now} for u in batch.updates])
    if batch.steps:
        rows = [{k: v for k, v in st.items() if not k.startswith("_")} for st in batch.steps]
        created = insert_rows(s, D, rows)
        for st, new_id in zip(batch.steps, created, strict=True):
            channel = st["channel"]
            batch.logs.append((new_id, DeliveryStatus.PENDING, st["_why"]))
            batch.logs.append((st["_from"], DeliveryStatus.FAILED,
                               f"next: {channel} (delivery {new_id})"))
            if st["next_attempt_at"] is not None:  # quiet hours: a timer for their end
                batch.todo.later.setdefault(Channel(channel), {})[new_id] = st["next_attempt_at"]
            else:
                batch.todo.next_steps.setdefault(Channel(channel), []).append(new_id)
    log_lines(s, batch.logs)


def acknowledge(s: Session, tenant: str, delivery_id: int, receiver: tuple[str, str]) -> bool:
    """A live session acknowledged the item: the browser step succeeded."""
    rows = _locked(s, [delivery_id], D.c.tenant_id == tenant,
                   D.c.receiver_kind == receiver[0], D.c.receiver_id == receiver[1],
                   D.c.channel == Channel.BROWSER)
    if not rows:
        return False
    batch = _Batch()
    _apply(batch, rows[0], Outcome.sent(ACKED), DeliveryConfig())
    _write(s, batch)
    return True


def expire_unacked(s: Session, ids: list[int], cfg: DeliveryConfig) -> Recorded:
    """After the presence window: unacknowledged browser steps fail and the chain moves on."""
    batch = _Batch()
    unacked = Outcome(OutcomeStatus.UNACKED,
                      f"no live session acknowledged within {cfg.presence_window_s:g}s")
    for row in _locked(s, ids, D.c.channel == Channel.BROWSER):
        _apply(batch, row, unacked, cfg)
    _write(s, batch)
    return batch.todo


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
    stuck = list(s.execute(select(D.c.id, D.c.channel, D.c.strategy).where(
        D.c.status == DeliveryStatus.SENDING,
        or_(D.c.lease_until < now, and_(D.c.lease_until.is_(None), D.c.updated_at < deadline)))
        .limit(5000).with_for_update(skip_locked=True)))
    stale.unacked = [r.id for r in stuck if r.channel == Channel.BROWSER
                     and r.strategy == Strategy.FIRST_SUCCESS]
    unacked = set(stale.unacked)
    lost = [r.id for r in stuck if r.id not in unacked]
    if lost:
        s.execute(update(D).where(one_of(s, D.c.id, lost), D.c.status == DeliveryStatus.SENDING)
                  .values(status=DeliveryStatus.PENDING, updated_at=now, lease_until=None,
                          worker_id=None))
        log_lines(s, ((i, DeliveryStatus.PENDING, "recovered by the sweeper (its worker's "
                       "lease ran out: lost while sending)") for i in lost))
    pending = s.execute(select(D.c.id, D.c.channel).where(
        D.c.status == DeliveryStatus.PENDING,
        or_(and_(D.c.next_attempt_at.is_(None), D.c.updated_at < deadline),
            D.c.next_attempt_at < deadline)).limit(20000)).all()
    recovered = set(lost)
    for did, channel in [*pending, *((r.id, r.channel) for r in stuck if r.id in recovered)]:
        stale.pending.setdefault(Channel(channel), []).append(did)
    stale.events = list(s.scalars(select(m.EventRow.pk).where(
        m.EventRow.status == EventStatus.RECEIVED, m.EventRow.received_at < deadline)
        .limit(20000)))
    return stale


def release_claims(s: Session, worker: str) -> dict[Channel, list[int]]:
    """A dead worker's claims go back to pending (its in-flight sends may repeat)."""
    released = s.execute(
        update(D).where(D.c.worker_id == worker, D.c.status == DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.PENDING, lease_until=None, worker_id=None,
                updated_at=utcnow()).returning(D.c.id, D.c.channel)).all()
    log_lines(s, ((i, DeliveryStatus.PENDING, f"released: worker {worker} stopped beating")
                  for i, _ in released))
    return _by_channel(released)


def lost_messages(s: Session, channels: list[Channel], after_s: float,
                  limit: int = 2000) -> dict[Channel, list[int]]:
    """Pending deliveries due for ``after_s`` that nobody claimed, on channels whose queue
    is empty: their message was lost. Touched, so each is re-enqueued once per period."""
    if not channels:
        return {}
    now = utcnow()
    cutoff = now - timedelta(seconds=after_s)
    found = s.execute(select(D.c.id, D.c.channel).where(
        D.c.status == DeliveryStatus.PENDING, D.c.channel.in_([str(c) for c in channels]),
        D.c.updated_at < cutoff,
        or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at < cutoff))
        .limit(limit).with_for_update(skip_locked=True)).all()
    if found:
        s.execute(update(D).where(one_of(s, D.c.id, [i for i, _ in found]),
                                  D.c.status == DeliveryStatus.PENDING).values(updated_at=now))
    return _by_channel(found)


def lost_events(s: Session, after_s: float, limit: int = 2000) -> list[int]:
    """Events received ``after_s`` ago and never tried, while the route queue is empty: their
    route message was lost (an enqueue that timed out). Events being routed are locked."""
    cutoff = utcnow() - timedelta(seconds=after_s)
    return list(s.scalars(select(m.EventRow.pk).where(
        m.EventRow.status == EventStatus.RECEIVED, m.EventRow.attempts == 0,
        m.EventRow.received_at < cutoff).order_by(m.EventRow.pk).limit(limit)
        .with_for_update(skip_locked=True)))


def _by_channel(rows: Iterable[Any]) -> dict[Channel, list[int]]:
    found: dict[Channel, list[int]] = {}
    for did, channel in rows:
        found.setdefault(Channel(channel), []).append(did)
    return found


def history(s: Session, rows: list[Any]) -> dict[int, list[dict[str, str]]]:
    """The status history of deliveries (rows with id, step, created_at), oldest first.
    A routed delivery's first line, "pending: planned", is its creation (not stored);
    later steps of a sequence log their own first line, saying why they were tried."""
    found: dict[int, list[dict[str, str]]] = {
        r.id: ([{"status": DeliveryStatus.PENDING.value, "at": r.created_at.isoformat(),
                 "detail": PLANNED}] if r.step == 0 else []) for r in rows}
    for line in s.execute(select(LOG).where(one_of(s, LOG.c.delivery_id, list(found)))
                          .order_by(LOG.c.id)):
        found[line.delivery_id].append({"status": line.status, "at": line.at.isoformat(),
                                        "detail": line.detail})
    return found


def settled_at_routing(plan: dict[str, Any], rows: list[Any], routed_at: datetime | None
                       ) -> list[dict[str, Any]]:
    """The browser deliveries (strategy `all`) settled when the event was routed whose
    receiver had no open session after the commit: they have no row, so they are
    read off the stored plan (every planned browser receiver under `all` without a
    browser row), shaped like the activity view's other deliveries."""
    with_row = {(r.receiver_kind, r.receiver_id) for r in rows if r.channel == Channel.BROWSER}
    at = routed_at.isoformat() if routed_at else ""
    history = [{"status": DeliveryStatus.PENDING.value, "at": at, "detail": PLANNED},
               {"status": DeliveryStatus.SENT.value, "at": at, "detail": NO_SESSION}]
    return [{
        "id": None, "receiver": {"kind": r["kind"], "id": r["id"]},
        "channel": Channel.BROWSER.value, "status": DeliveryStatus.SENT.value,
        "strategy": Strategy.ALL.value, "step": 0, "remaining_chain": [], "attempts": 0,
        "last_error": None, "provider_response": NO_SESSION, "next_attempt_at": None,
        "history": history, "status_times": {h["status"]: h["at"] for h in history},
    } for r in plan.get("receivers", [])
        if r.get("strategy") == Strategy.ALL and Channel.BROWSER in r.get("channels", ())
        and (r["kind"], r["id"]) not in with_row]
