"""The in-app feed (DESIGN §3): stacked writes and receiver-side reads.

Stacking: while an unread item with the same (receiver, type, subject) exists, a
new event bumps its count, text and time (and its seq, so it moves to the top and
live clients see it again) instead of adding a row. A partial unique index on
unread items makes this safe against two routers writing at once.

Filters on unread items say plain ``m.FeedItem.unread`` (SQL ``WHERE unread``), never
``.is_(True)``: PostgreSQL matches ``unread IS TRUE`` to neither partial index
(``ix_feed_unread``, ``uq_feed_unread_stack``) and falls back to scanning a
receiver's whole feed.

Inbox states (``router.delivery.inbox``): a bump also makes the item unseen again and wakes
it if it was snoozed (news about a snoozed item is news). Counts leave snoozed items out;
``unseen`` counts the unread items not shown in an opened drawer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Executable,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from router.core.enums import FeedView, ReceiverKind
from router.delivery import access, frames
from router.store import models as m
from router.store.bulk import ids_and_seqs, insert_rows
from router.store.db import (
    core_read,
    dialect_of,
    next_seq,
    one_of,
    one_of_param,
    pair_of_param,
    pair_params,
)
from router.store.models import utcnow


@dataclass(frozen=True)
class FeedWrite:
    """One receiver's feed entry for one event."""

    receiver_kind: str
    receiver_id: str
    title: str
    message: str
    link: str


FEED = cast(Table, m.FeedItem.__table__)


@dataclass(frozen=True)
class FeedEntry:
    """One event's feed writes."""

    tenant: str
    event_pk: int
    doc: dict[str, Any]
    writes: list[FeedWrite]


StackKey = tuple[str, str, str, str, str, str]  # tenant, kind, id, type, subject kind, id


def write_many(s: Session, entries: list[FeedEntry]) -> dict[tuple[int, str, str], int]:
    """Insert or bump the feed items of a batch of events with set-based statements.

    Returns (event pk, receiver kind, receiver id) -> feed item id. Items that stack
    within the batch (same receiver, type and subject twice) are merged in memory.
    """
    keyed = _keyed(entries)
    if not keyed:
        return {}
    existing = _unread_stacks(s, {k for _, _, k in keyed})
    reserved: list[int] | None = None  # PostgreSQL: ids for the new items, with their seqs
    if dialect_of(s) == "postgresql":
        reserved, numbers = ids_and_seqs(s, FEED, len(keyed), "feed_seq")
    else:
        numbers = next_seq(s, len(keyed))
    seqs = iter(numbers)
    now = utcnow()
    shared = {id(e): _shared_values(e, now) for e in entries}
    fresh: dict[StackKey, dict[str, Any]] = {}
    bumps: dict[StackKey, dict[str, Any]] = {}
    owner: dict[tuple[int, str, str], StackKey] = {}
    for entry, w, key in keyed:
        owner[(entry.event_pk, w.receiver_kind, w.receiver_id)] = key
        values = _values(shared[id(entry)], w, next(seqs))
        if key in existing:
            bump = bumps.setdefault(key, {"b_id": existing[key], "b_add": 0})
            bump.update(_bump_values(values), b_add=bump["b_add"] + 1)
        elif key in fresh:
            fresh[key].update(_bump_values(values), count=fresh[key]["count"] + 1)
        else:
            fresh[key] = values
    ids = dict(existing)
    ids.update(_insert(s, fresh, reserved))
    hidden = _hidden_stacks(s, existing, keyed)
    _apply_bumps(s, [b for k, b in bumps.items() if k not in hidden], restart=False)
    _apply_bumps(s, [b for k, b in bumps.items() if k in hidden], restart=True)
    return {who: ids[key] for who, key in owner.items()}


def _hidden_stacks(s: Session, existing: dict[StackKey, int],
                   keyed: list[tuple[FeedEntry, FeedWrite, StackKey]]) -> set[StackKey]:
    """Code users' unread items from before their code's "delete all notifications"
    cut-off are hidden from them: the next event restarts the item, not counts on."""
    codes = {key: (e.tenant, e.doc["subject"].get("code_id")) for e, _w, key in keyed
             if key in existing and key[1] == ReceiverKind.CODE_USER}
    hidden: set[StackKey] = set()
    for tenant, code_id in set(codes.values()):
        cutoff = access.cutoff(s, tenant, code_id)
        if cutoff is None:
            continue
        keys = [k for k, c in codes.items() if c == (tenant, code_id)]
        old = set(s.scalars(select(m.FeedItem.id).where(
            m.FeedItem.id.in_([existing[k] for k in keys]), m.FeedItem.updated_at <= cutoff)))
        hidden |= {k for k in keys if existing[k] in old}
    return hidden


def _keyed(entries: list[FeedEntry]) -> list[tuple[FeedEntry, FeedWrite, StackKey]]:
    keyed: list[tuple[FeedEntry, FeedWrite, StackKey]] = []
    for e in entries:
        tenant, etype, subject = e.tenant, e.doc["type"], e.doc["subject"]
        kind, sid = subject["kind"], subject["id"]
        keyed += [(e, w, (tenant, w.receiver_kind, w.receiver_id, etype, kind, sid))
                  for w in e.writes]
    return keyed


def _shared_values(entry: FeedEntry, now: datetime) -> dict[str, Any]:
    """The columns all of an event's items have alike (a fan-out writes 50,000)."""
    subject, actor = entry.doc["subject"], entry.doc.get("actor") or {}
    return dict(tenant_id=entry.tenant, event_type=entry.doc["type"],
                subject_kind=subject["kind"], subject_id=subject["id"],
                subject_number=subject.get("number", ""), code_id=subject.get("code_id"),
                actor_name=actor.get("name", ""), actor_avatar_url=actor.get("avatar_url", ""),
                count=1, unread=True, last_event_pk=entry.event_pk, created_at=now,
                updated_at=now)


def _values(shared: dict[str, Any], w: FeedWrite, seq: int) -> dict[str, Any]:
    return {**shared, "receiver_kind": w.receiver_kind, "receiver_id": w.receiver_id,
            "seq": seq, "title": w.title, "message": w.message, "link": w.link}


def _bump_values(values: dict[str, Any]) -> dict[str, Any]:
    keep = ("seq", "title", "message", "link", "actor_name", "actor_avatar_url",
            "last_event_pk", "updated_at")
    return {k: values[k] for k in keep}


def _unread_stacks(s: Session, keys: set[StackKey]) -> dict[StackKey, int]:
    """Unread items the batch may stack on: fetched by the batch's subjects through a
    partial index, then matched on the full key here (a tuple IN of every key misses the
    partial indexes)."""
    found: dict[StackKey, int] = {}
    by_tenant: dict[str, set[tuple[str, str]]] = {}
    for key in keys:
        by_tenant.setdefault(key[0], set()).add((key[4], key[5]))
    dialect = dialect_of(s)
    for tenant, subjects in by_tenant.items():
        ordered = sorted(subjects)
        for start in range(0, len(ordered), 1000):
            rows = core_read(s, _stacks_statement(dialect), {
                "tenant": tenant, **pair_params(dialect, "subjects", ordered[start:start + 1000])})
            for row in rows:
                candidate = cast(StackKey, tuple(row[1:]))
                if candidate in keys:
                    found[candidate] = row[0]
    return found


@cache
def _stacks_statement(dialect: str) -> Select[Any]:
    c = FEED.c
    return (select(c.id, c.tenant_id, c.receiver_kind, c.receiver_id, c.event_type,
                   c.subject_kind, c.subject_id)
            .where(c.unread, c.tenant_id == bindparam("tenant"),
                   pair_of_param(dialect, c.subject_kind, c.subject_id, "subjects"))
            .order_by(c.id).with_for_update())


def _insert(s: Session, fresh: dict[StackKey, dict[str, Any]], reserved: list[int] | None
            ) -> dict[StackKey, int]:
    if not fresh:
        return {}
    keys = list(fresh)
    ids = insert_rows(s, FEED, [fresh[k] for k in keys], reserved=reserved)
    return dict(zip(keys, ids, strict=True))


def _apply_bumps(s: Session, bumps: list[dict[str, Any]], restart: bool) -> None:
    if not bumps:
        return
    table = FEED
    counted: dict[str, Any] = ({"count": bindparam("b_add"), "created_at": utcnow()} if restart
                               else {"count": table.c.count + bindparam("b_add")})
    counted.update(seen_at=None, snoozed_until=None)  # news: unseen again, and awake
    s.execute(update(table).where(table.c.id == bindparam("b_id")).values(**counted)
              .execution_options(synchronize_session=False), bumps)


# ------------------------------------------------------------------------- reads


_ITEM_FIELDS = ("id", "seq", "unread", "created_at", "updated_at", "count", "event_type",
                "subject_kind", "subject_id", "subject_number", "title", "message",
                "actor_name", "actor_avatar_url", "link", "seen_at", "archived_at",
                "snoozed_until")
_BY_KEY, _BY_ATTRIBUTE = itemgetter(*_ITEM_FIELDS), attrgetter(*_ITEM_FIELDS)


def item_json(item: Any) -> frames.FeedItem:
    """A feed item (ORM object or row) as the API and live messages show it.

    A row's values are taken through its mapping in one C call: attribute access on
    a Row costs ~1 us per column, two thirds of the whole for a 50-item page."""
    (id_, seq, unread, created, updated, count, event_type, subject_kind, subject_id,
     subject_number, title, message, actor_name, avatar_url, link, seen_at, archived_at,
     snoozed_until) = (_BY_KEY(item._mapping) if isinstance(item, Row) else _BY_ATTRIBUTE(item))
    return {
        "id": id_, "seq": seq, "unread": unread,
        "created_at": created.isoformat(), "updated_at": updated.isoformat(),
        "count": count, "event_type": event_type,
        "subject": {"kind": subject_kind, "id": subject_id, "number": subject_number},
        "title": title, "message": message,
        "actor": ({"name": actor_name, "avatar_url": avatar_url or None}
                  if actor_name or avatar_url else None),
        "icon": subject_kind, "link": link, "seen": seen_at is not None,
        "archived": archived_at is not None,
        "snoozed_until": snoozed_until.isoformat() if snoozed_until else None,
    }


@dataclass(frozen=True)
class Reader:
    """Whose feed is read, and what they may see."""

    tenant: str
    kind: str
    id: str
    subject: tuple[str, str] | None = None  # code users see only their subject
    cutoff: datetime | None = None  # code users: items older than this are hidden

    def where(self) -> Any:
        """The receiver filter with this reader's values bound (for the writes; the
        reads run the prebuilt statements with ``params()``)."""
        return and_(*_receiver(*self.shape)).params(self.params())

    @property
    def shape(self) -> tuple[bool, bool]:
        """Which optional filters apply: picks one of the prebuilt read statements."""
        return self.subject is not None, self.cutoff is not None

    def params(self) -> dict[str, Any]:
        """The bound values of the prebuilt statements' receiver filter."""
        values: dict[str, Any] = {"tenant": self.tenant, "kind": self.kind, "rid": self.id}
        if self.subject:
            values.update(subject_kind=self.subject[0], subject_id=self.subject[1])
        if self.cutoff:
            values["cutoff"] = self.cutoff
        return values


# The per-request reads run prebuilt statements through the session's Core connection:
# building a select and its ORM execution cost more per call than the query itself.


def _receiver(subject: bool, cutoff: bool) -> list[ColumnElement[bool]]:
    c = FEED.c
    clauses = [c.tenant_id == bindparam("tenant"), c.receiver_kind == bindparam("kind"),
               c.receiver_id == bindparam("rid")]
    if subject:
        clauses += [c.subject_kind == bindparam("subject_kind"),
                    c.subject_id == bindparam("subject_id")]
    if cutoff:
        clauses.append(c.updated_at > bindparam("cutoff"))
    return clauses


def _in_view(view: FeedView) -> list[ColumnElement[bool]]:
    c = FEED.c
    if view == FeedView.ARCHIVED:
        return [c.archived_at.is_not(None)]
    if view == FeedView.SNOOZED:
        return [c.snoozed_until.is_not(None)]
    inbox: list[ColumnElement[bool]] = [c.archived_at.is_(None), c.snoozed_until.is_(None)]
    return [c.unread, *inbox] if view == FeedView.UNREAD else inbox


@cache
def _page_statement(shape: tuple[bool, bool], view: FeedView, unread_only: bool,
                    after: bool) -> Select[Any]:
    c = FEED.c
    query = select(*c).where(*_receiver(*shape), *_in_view(view))
    if unread_only and view != FeedView.UNREAD:
        query = query.where(c.unread)
    if after:
        query = query.where(or_(c.updated_at < bindparam("before"),
                                and_(c.updated_at == bindparam("before"),
                                     c.id < bindparam("before_id"))))
    return query.order_by(c.updated_at.desc(), c.id.desc()).limit(bindparam("limit"))


UNSEEN = func.coalesce(func.sum(case((FEED.c.seen_at.is_(None), 1), else_=0)), 0)


@cache
def _count_statement(shape: tuple[bool, bool]) -> Select[Any]:
    return select(func.count(), UNSEEN).select_from(FEED).where(
        *_receiver(*shape), FEED.c.unread, FEED.c.snoozed_until.is_(None))


@cache
def _replay_statement(shape: tuple[bool, bool]) -> Select[Any]:
    c = FEED.c
    return (select(*c).where(*_receiver(*shape), c.seq > bindparam("after_seq"),
                             c.archived_at.is_(None), c.snoozed_until.is_(None))
            .order_by(c.seq).limit(bindparam("limit")))


def page(s: Session, reader: Reader, limit: int, cursor: tuple[datetime, int] | None,
         view: FeedView = FeedView.ALL, unread_only: bool = False
         ) -> tuple[list[Any], tuple[datetime, int] | None]:
    """A page of a view's items (only the unread ones if asked) as rows (Core: no ORM
    objects built for a read-only page)."""
    params = reader.params()
    params["limit"] = limit + 1
    if cursor:
        params.update(before=cursor[0], before_id=cursor[1])
    statement = _page_statement(reader.shape, view, unread_only, cursor is not None)
    rows = list(core_read(s, statement, params).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].updated_at, rows[-1].id) if more and rows else None)


@dataclass(frozen=True)
class LiveTarget:
    """A browser delivery to announce live: which item, to whom, ack wanted or not."""

    delivery_id: int
    tenant: str
    receiver_kind: str
    receiver_id: str
    feed_item_id: int | None
    wants_ack: bool = False


@cache
def _items_statement(dialect: str) -> Executable:
    return select(*FEED.c).where(one_of_param(dialect, FEED.c.id, "ids"))


def live_entries(s: Session, targets: list[LiveTarget]) -> dict[int, dict[str, Any]]:
    """The live messages (item + the receiver's counts) for browser deliveries, by
    delivery id, read with two set-based queries. Deliveries whose item is gone are left
    out."""
    ids = {t.feed_item_id for t in targets if t.feed_item_id}
    items: dict[int, frames.FeedItem] = {}
    for start in range(0, len(ids), 5000):
        chunk = sorted(ids)[start:start + 5000]
        items.update((row.id, item_json(row)) for row in core_read(
            s, _items_statement(dialect_of(s)), {"ids": chunk}))
    by_tenant: dict[str, list[tuple[str, str]]] = {}
    for t in targets:
        by_tenant.setdefault(t.tenant, []).append((t.receiver_kind, t.receiver_id))
    counts = {(tenant, *k): n for tenant, keys in by_tenant.items()
              for k, n in unread_counts(s, tenant, list(dict.fromkeys(keys))).items()}
    return {t.delivery_id: {
        "tenant": t.tenant, "kind": t.receiver_kind, "id": t.receiver_id,
        "item": items[t.feed_item_id],
        **counts.get((t.tenant, t.receiver_kind, t.receiver_id), NONE).fields(),
        "delivery": t.delivery_id if t.wants_ack else None}
        for t in targets if t.feed_item_id in items}


@dataclass(frozen=True)
class Counts:
    """A receiver's unread items (snoozed ones left out) and, of those, the unseen ones."""

    unread: int
    unseen: int

    def fields(self) -> dict[str, int]:
        """As frames carry them: ``unseen`` only where it differs from ``unread``."""
        if self.unseen == self.unread:
            return {"unread": self.unread}
        return {"unread": self.unread, "unseen": self.unseen}

    def frame(self) -> frames.Unread:
        """An ``unread`` frame with these counts (the caller adds what changed)."""
        frame: frames.Unread = {"type": "unread", "unread": self.unread}
        if self.unseen != self.unread:
            frame["unseen"] = self.unseen
        return frame


NONE = Counts(0, 0)


def counts(s: Session, reader: Reader) -> Counts:
    unread, unseen = tuple(core_read(s, _count_statement(reader.shape), reader.params()).one())
    return Counts(int(unread), int(unseen))


def unread_count(s: Session, reader: Reader) -> int:
    return counts(s, reader).unread


def unread_counts(s: Session, tenant: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Counts]:
    """Unread counts for many receivers at once (for live fan-out), in one statement
    for any number of receivers: ``router.store.db.pair_of`` narrows by kind and id arrays
    (index conditions on the partial unread index, planned right even with stale
    statistics) before the exact pairs are checked (docs/decisions.md, "Id lookups and
    stale statistics")."""
    found: dict[tuple[str, str], Counts] = {k: NONE for k in keys}
    if not keys:
        return found
    dialect = dialect_of(s)
    size = len(keys) if dialect == "postgresql" else 500
    for start in range(0, len(keys), size):
        rows = core_read(s, _counts_statement(dialect), {
            "tenant": tenant, **pair_params(dialect, "receivers", keys[start:start + size])})
        found.update({(kind, rid): Counts(int(n), int(unseen)) for kind, rid, n, unseen in rows})
    return found


@cache
def _counts_statement(dialect: str) -> Executable:
    c = FEED.c
    return (select(c.receiver_kind, c.receiver_id, func.count(), UNSEEN)
            .where(c.tenant_id == bindparam("tenant"), c.unread, c.snoozed_until.is_(None),
                   pair_of_param(dialect, c.receiver_kind, c.receiver_id, "receivers"))
            .group_by(c.receiver_kind, c.receiver_id))


def counts_for(s: Session, tenant: str, keys: list[tuple[str, str]]
               ) -> dict[tuple[str, str], Counts]:
    """Unread counts as each receiver's own sessions count them: code users without the
    items their code's clear-notifications cut-off hides."""
    code_users = [rid for kind, rid in keys if kind == ReceiverKind.CODE_USER]
    counts = unread_counts(s, tenant, [k for k in keys if k[0] != ReceiverKind.CODE_USER])
    if code_users:
        c, state = FEED.c, m.CodeState.__table__.c
        rows = s.execute(select(c.receiver_id, func.count(), UNSEEN).select_from(FEED.outerjoin(
            m.CodeState.__table__, and_(state.tenant_id == c.tenant_id, state.code_id == c.code_id)))
            .where(c.tenant_id == tenant, c.receiver_kind == ReceiverKind.CODE_USER,
                   one_of(s, c.receiver_id, code_users), c.unread, c.snoozed_until.is_(None),
                   or_(state.notifications_cutoff.is_(None), c.updated_at > state.notifications_cutoff))
            .group_by(c.receiver_id))
        found = {rid: Counts(int(n), int(unseen)) for rid, n, unseen in rows}
        counts.update({(str(ReceiverKind.CODE_USER), rid): found.get(rid, NONE)
                       for rid in code_users})
    return counts


@dataclass(frozen=True)
class ReadChange:
    """What a read (or another inbox change) did to a receiver's feed: the frame its
    sessions need (None when nothing changed, e.g. the item was read already)."""

    frame: frames.Unread | frames.Item | None


def mark_read(s: Session, reader: Reader, item_id: int) -> tuple[m.FeedItem | None, ReadChange]:
    item = s.scalars(select(m.FeedItem).where(reader.where(), m.FeedItem.id == item_id)
                     .with_for_update()).first()
    if item is None or not item.unread:
        return item, ReadChange(None)
    item.unread, item.read_at = False, utcnow()
    frame = counts(s, reader).frame()
    frame["read"] = [item.id]
    return item, ReadChange(frame)


def mark_all_read(s: Session, reader: Reader) -> ReadChange:
    """Mark read every unread item up to the highest seq now: an item bumped meanwhile
    (a higher seq) stays unread, and other sessions un-bold exactly what was read."""
    top = core_read(s, _top_unread_statement(reader.shape), reader.params()).scalar_one()
    if top is None:
        return ReadChange(None)
    s.execute(update(m.FeedItem).where(reader.where(), m.FeedItem.unread, m.FeedItem.seq <= top,
                                       m.FeedItem.snoozed_until.is_(None))
              .values(unread=False, read_at=utcnow()))
    frame = counts(s, reader).frame()
    frame["read_up_to_seq"] = int(top)
    return ReadChange(frame)


@cache
def _top_unread_statement(shape: tuple[bool, bool]) -> Select[Any]:
    return select(func.max(FEED.c.seq)).where(*_receiver(*shape), FEED.c.unread,
                                              FEED.c.snoozed_until.is_(None))


def cleared(s: Session, tenant: str, code_id: str, cutoff: datetime) -> list[tuple[str, frames.Unread]]:
    """After a code's "delete all notifications": each code user of the code with the
    frame for its sessions (new unread count, items hidden up to a seq). One statement."""
    c = FEED.c
    visible = and_(c.unread, c.updated_at > cutoff, c.snoozed_until.is_(None))
    visible_unread = func.sum(case((visible, 1), else_=0))
    visible_unseen = func.sum(case((and_(visible, c.seen_at.is_(None)), 1), else_=0))
    hidden_top = func.max(case((c.updated_at <= cutoff, c.seq), else_=None))
    rows = s.execute(select(c.receiver_id, visible_unread, visible_unseen, hidden_top).where(
        c.tenant_id == tenant, c.receiver_kind == ReceiverKind.CODE_USER, c.code_id == code_id)
        .group_by(c.receiver_id))
    found = []
    for rid, n, unseen, top in rows:
        if top is not None:
            frame = Counts(int(n or 0), int(unseen or 0)).frame()
            frame["hidden_up_to_seq"] = int(top)
            found.append((rid, frame))
    return found


def replay(s: Session, reader: Reader, after_seq: int, limit: int = 500) -> list[Any]:
    params = reader.params()
    params.update(after_seq=after_seq, limit=limit)
    return list(core_read(s, _replay_statement(reader.shape), params).all())
