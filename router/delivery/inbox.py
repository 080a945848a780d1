"""Inbox states of a receiver's feed items beyond read (issue #16): seen, archived, snoozed.

- seen (``seen_at``): the item was shown in an opened drawer. A badge counts the unread
  items not seen (``feed.Counts.unseen``); a bump (an event stacked on the item) makes it
  unseen again.
- archived (``archived_at``): done with. Archiving reads the item, so stacking (which lands
  on unread items only) never writes into the archive: the next event starts a new item.
- snoozed (``snoozed_until``): left out of the views and counts until then. The column is
  the durable timer of the wake-up: a delayed message wakes the item on time
  (``workers/snooze.py``), the sweeper's pass wakes what a lost message left behind. A wake
  moves the item to the top (a new seq and time), unread and unseen, and announces it as
  an ``item`` frame with ``woke``. If another unread item of the same stack exists by then
  (the snoozed one had been read, and a new event started a fresh item), the woken one
  comes back read: a stack has one unread item at most (``uq_feed_unread_stack``).

Every change is scoped by the reader's filter and returns the frame the receiver's open
sessions need (None when nothing changed); the caller tells it after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from router.core.enums import ReceiverKind
from router.delivery import access, frames
from router.delivery.feed import FEED, Counts, ReadChange, Reader, counts, counts_for, item_json
from router.delivery.live import Addressed
from router.store import models as m
from router.store.db import next_seq, one_of
from router.store.models import utcnow

C = FEED.c


def _locked(s: Session, reader: Reader, item_id: int) -> m.FeedItem | None:
    return s.scalars(select(m.FeedItem).where(reader.where(), m.FeedItem.id == item_id)
                     .with_for_update()).first()


def _item_frame(item: Any, found: Counts) -> frames.Item:
    frame: frames.Item = {"type": "item", "item": item_json(item), "unread": found.unread}
    if found.unseen != found.unread:
        frame["unseen"] = found.unseen
    return frame


def mark_seen(s: Session, reader: Reader, ids: list[int]) -> tuple[list[int], ReadChange]:
    """Mark the reader's items among ``ids`` seen (others' ids are passed over)."""
    seen = sorted(s.scalars(update(FEED).where(reader.where(), one_of(s, C.id, ids),
                                               C.seen_at.is_(None))
                            .values(seen_at=utcnow()).returning(C.id)))
    if not seen:
        return seen, ReadChange(None)
    frame = counts(s, reader).frame()
    frame["seen"] = seen
    return seen, ReadChange(frame)


def archive(s: Session, reader: Reader, item_id: int) -> tuple[m.FeedItem | None, ReadChange]:
    """Archive one item (it is read from now on; a snooze ends)."""
    item = _locked(s, reader, item_id)
    if item is None or item.archived_at is not None:
        return item, ReadChange(None)
    now = utcnow()
    item.archived_at, item.snoozed_until = now, None
    if item.unread:
        item.unread, item.read_at = False, now
    frame = counts(s, reader).frame()
    frame["archived"] = [item.id]
    return item, ReadChange(frame)


def unarchive(s: Session, reader: Reader, item_id: int) -> tuple[m.FeedItem | None, ReadChange]:
    """Take an item back out of the archive (read, in its place by time). A new seq, so a
    session that reconnects with an older ``last_seq`` gets it replayed."""
    item = _locked(s, reader, item_id)
    if item is None or item.archived_at is None:
        return item, ReadChange(None)
    item.archived_at, item.seq = None, next_seq(s, 1)[0]
    return item, ReadChange(_item_frame(item, counts(s, reader)))


def archive_read(s: Session, reader: Reader) -> tuple[int, ReadChange]:
    """Archive every read item in the inbox up to the highest seq now (an item read in
    another session meanwhile with a higher seq stays, and the frame is exact)."""
    inbox = (reader.where(), ~C.unread, C.archived_at.is_(None), C.snoozed_until.is_(None))
    top = s.execute(select(func.max(C.seq)).where(*inbox)).scalar_one()
    if top is None:
        return 0, ReadChange(None)
    archived = len(s.scalars(update(FEED).where(*inbox, C.seq <= top)
                             .values(archived_at=utcnow()).returning(C.id)).all())
    frame = counts(s, reader).frame()
    frame["archived_read_up_to_seq"] = int(top)
    return archived, ReadChange(frame)


def snooze(s: Session, reader: Reader, item_id: int, until: datetime
           ) -> tuple[m.FeedItem | None, ReadChange]:
    """Snooze an item until ``until`` (again: the new time holds; archived: it leaves the
    archive and comes back when it wakes)."""
    item = _locked(s, reader, item_id)
    if item is None:
        return None, ReadChange(None)
    item.snoozed_until, item.archived_at = until, None
    frame = counts(s, reader).frame()
    frame["snoozed"] = [{"id": item.id, "until": until.isoformat()}]
    return item, ReadChange(frame)


# ------------------------------------------------------------------------ waking up


def wake(s: Session, due_by: datetime, ids: list[int] | None = None,
         limit: int = 500) -> list[Addressed]:
    """Wake the snoozed items due by ``due_by`` (among ``ids`` if given: a wake-up message's
    items; one snoozed again for later is left for its own message). Locked with SKIP
    LOCKED, so a message and the sweeper's pass never wake one item twice. Returns the
    ``item`` frames (``woke``) for the receivers' sessions."""
    query = select(C.id, C.tenant_id, C.receiver_kind, C.receiver_id, C.event_type,
                   C.subject_kind, C.subject_id, C.code_id, C.unread, C.updated_at).where(
        C.snoozed_until.is_not(None), C.snoozed_until <= due_by)
    if ids is not None:
        query = query.where(one_of(s, C.id, ids))
    rows = s.execute(query.order_by(C.snoozed_until, C.id).limit(limit)
                     .with_for_update(skip_locked=True)).all()
    if not rows:
        return []
    hidden = _cleared_meanwhile(s, rows)
    back = [r for r in rows if r.id not in hidden]
    blocked = {r.id for r in back if not r.unread and _stack_has_unread(s, r)}
    _write_wake(s, hidden, back, blocked)
    return _announce(s, [r.id for r in back])


def _cleared_meanwhile(s: Session, rows: Sequence[Any]) -> set[int]:
    """Code users' items that their code's "delete all notifications" hid while they slept:
    they stay hidden (only their snooze ends)."""
    hidden: set[int] = set()
    cutoffs: dict[tuple[str, str], datetime | None] = {}
    for r in rows:
        if r.receiver_kind != ReceiverKind.CODE_USER or not r.code_id:
            continue
        key = (r.tenant_id, r.code_id)
        if key not in cutoffs:
            cutoffs[key] = access.cutoff(s, *key)
        cutoff = cutoffs[key]
        if cutoff is not None and r.updated_at <= cutoff:
            hidden.add(r.id)
    return hidden


def _stack_has_unread(s: Session, r: Any) -> bool:
    return s.execute(select(C.id).where(
        C.unread, C.tenant_id == r.tenant_id, C.receiver_kind == r.receiver_kind,
        C.receiver_id == r.receiver_id, C.event_type == r.event_type,
        C.subject_kind == r.subject_kind, C.subject_id == r.subject_id).limit(1)).first() is not None


def _write_wake(s: Session, hidden: set[int], back: list[Any], blocked: set[int]) -> None:
    now = utcnow()
    seqs = iter(next_seq(s, len(back)))
    unread = [{"b_id": r.id, "b_seq": next(seqs)} for r in back if r.id not in blocked]
    read = [{"b_id": r.id, "b_seq": next(seqs)} for r in back if r.id in blocked]
    moved: dict[str, Any] = {"snoozed_until": None, "seq": bindparam("b_seq"), "updated_at": now}
    by_id = C.id == bindparam("b_id")
    if unread:
        s.execute(update(FEED).where(by_id).values(**moved, unread=True, read_at=None,
                                                   seen_at=None)
                  .execution_options(synchronize_session=False), unread)
    if read:
        s.execute(update(FEED).where(by_id).values(**moved)
                  .execution_options(synchronize_session=False), read)
    if hidden:
        s.execute(update(FEED).where(one_of(s, C.id, sorted(hidden))).values(snoozed_until=None))


def _announce(s: Session, ids: list[int]) -> list[Addressed]:
    if not ids:
        return []
    rows = s.execute(select(*C).where(one_of(s, C.id, ids)).order_by(C.seq)).all()
    by_tenant: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        by_tenant.setdefault(r.tenant_id, []).append((r.receiver_kind, r.receiver_id))
    found = {tenant: counts_for(s, tenant, list(dict.fromkeys(keys)))
             for tenant, keys in by_tenant.items()}
    woken = []
    for r in rows:
        frame = _item_frame(r, found[r.tenant_id][(r.receiver_kind, r.receiver_id)])
        frame["woke"] = True
        woken.append(Addressed(tenant=r.tenant_id, kind=r.receiver_kind, id=r.receiver_id,
                               frame=frame))
    return woken
