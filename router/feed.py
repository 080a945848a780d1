"""The in-app feed (DESIGN §3): stacked writes and receiver-side reads.

Stacking: while an unread item with the same (receiver, type, subject) exists, a
new event bumps its count, text and time (and its seq, so it moves to the top and
live clients see it again) instead of adding a row. A partial unique index on
unread items makes this safe against two routers writing at once.

Filters on unread items say plain ``m.FeedItem.unread`` (SQL ``WHERE unread``), never
``.is_(True)``: PostgreSQL matches ``unread IS TRUE`` to neither partial index
(``ix_feed_unread``, ``uq_feed_unread_stack``) and falls back to scanning a
receiver's whole feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from router import access
from router import models as m
from router.db import next_seq
from router.enums import ReceiverKind
from router.models import utcnow


@dataclass(frozen=True)
class FeedWrite:
    """One receiver's feed entry for one event."""

    receiver_kind: str
    receiver_id: str
    title: str
    message: str
    link: str


def write_items(s: Session, tenant: str, event_pk: int, doc: dict[str, Any],
                writes: list[FeedWrite]) -> dict[tuple[str, str], int]:
    """Insert or bump feed items for one event; returns (kind, id) -> feed item id."""
    if not writes:
        return {}
    subject = doc["subject"]
    keys = [(w.receiver_kind, w.receiver_id) for w in writes]
    existing = _unread_stacks(s, tenant, doc["type"], subject, keys)
    hidden = _hidden_stacks(s, tenant, subject, existing)
    seqs = iter(next_seq(s, len(writes)))
    now = utcnow()
    actor = doc.get("actor") or {}
    result: dict[tuple[str, str], int] = {}
    fresh: list[dict[str, Any]] = []
    for w in writes:
        key = (w.receiver_kind, w.receiver_id)
        if key in existing:
            _bump(s, existing[key], w, next(seqs), now, event_pk, actor,
                  restart=existing[key] in hidden)
            result[key] = existing[key]
        else:
            fresh.append(dict(
                tenant_id=tenant, receiver_kind=w.receiver_kind, receiver_id=w.receiver_id,
                seq=next(seqs), event_type=doc["type"], subject_kind=subject["kind"],
                subject_id=subject["id"], subject_number=subject.get("number", ""),
                code_id=subject.get("code_id"), title=w.title, message=w.message,
                actor_name=actor.get("name", ""), actor_avatar_url=actor.get("avatar_url", ""),
                link=w.link, count=1, unread=True, last_event_pk=event_pk, created_at=now,
                updated_at=now))
    if fresh:
        rows = s.execute(m.FeedItem.__table__.insert().returning(
            m.FeedItem.id, m.FeedItem.receiver_kind, m.FeedItem.receiver_id), fresh)
        result.update({(kind, rid): fid for fid, kind, rid in rows})
    return result


def _unread_stacks(s: Session, tenant: str, etype: str, subject: dict[str, Any],
                   keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for start in range(0, len(keys), 2000):
        chunk = keys[start:start + 2000]
        rows = s.execute(select(m.FeedItem.id, m.FeedItem.receiver_kind, m.FeedItem.receiver_id)
                         .where(m.FeedItem.tenant_id == tenant, m.FeedItem.unread,
                                m.FeedItem.event_type == etype,
                                m.FeedItem.subject_kind == subject["kind"],
                                m.FeedItem.subject_id == subject["id"],
                                tuple_(m.FeedItem.receiver_kind, m.FeedItem.receiver_id)
                                .in_(chunk)).with_for_update())
        found.update({(kind, rid): fid for fid, kind, rid in rows})
    return found


def _hidden_stacks(s: Session, tenant: str, subject: dict[str, Any],
                   existing: dict[tuple[str, str], int]) -> set[int]:
    """Code users' unread items from before their code's "delete all notifications"
    cut-off: hidden from them, so the next event restarts the item, not counts on."""
    ids = [fid for (kind, _), fid in existing.items() if kind == ReceiverKind.CODE_USER]
    cutoff = access.cutoff(s, tenant, subject.get("code_id")) if ids else None
    if cutoff is None:
        return set()
    return set(s.scalars(select(m.FeedItem.id).where(m.FeedItem.id.in_(ids),
                                                     m.FeedItem.updated_at <= cutoff)))


def _bump(s: Session, item_id: int, w: FeedWrite, seq: int, now: datetime, event_pk: int,
          actor: dict[str, Any], restart: bool = False) -> None:
    counted: dict[str, Any] = ({"count": 1, "created_at": now} if restart
                               else {"count": m.FeedItem.count + 1})
    s.execute(update(m.FeedItem).where(m.FeedItem.id == item_id).values(
        **counted, title=w.title, message=w.message, link=w.link, seq=seq,
        updated_at=now, last_event_pk=event_pk, actor_name=actor.get("name", ""),
        actor_avatar_url=actor.get("avatar_url", "")))


# ------------------------------------------------------------------------- reads


def item_json(item: m.FeedItem) -> dict[str, Any]:
    actor = ({"name": item.actor_name, "avatar_url": item.actor_avatar_url or None}
             if item.actor_name or item.actor_avatar_url else None)
    return {
        "id": item.id, "seq": item.seq, "unread": item.unread,
        "created_at": item.created_at.isoformat(), "updated_at": item.updated_at.isoformat(),
        "count": item.count, "event_type": item.event_type,
        "subject": {"kind": item.subject_kind, "id": item.subject_id,
                    "number": item.subject_number},
        "title": item.title, "message": item.message, "actor": actor,
        "icon": item.subject_kind, "link": item.link,
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
        clauses = [m.FeedItem.tenant_id == self.tenant, m.FeedItem.receiver_kind == self.kind,
                   m.FeedItem.receiver_id == self.id]
        if self.subject:
            clauses += [m.FeedItem.subject_kind == self.subject[0],
                        m.FeedItem.subject_id == self.subject[1]]
        if self.cutoff:
            clauses.append(m.FeedItem.updated_at > self.cutoff)
        return and_(*clauses)


def page(s: Session, reader: Reader, limit: int, cursor: tuple[datetime, int] | None,
         unread_only: bool) -> tuple[list[m.FeedItem], tuple[datetime, int] | None]:
    query = select(m.FeedItem).where(reader.where())
    if unread_only:
        query = query.where(m.FeedItem.unread)
    if cursor:
        query = query.where(or_(m.FeedItem.updated_at < cursor[0],
                                and_(m.FeedItem.updated_at == cursor[0],
                                     m.FeedItem.id < cursor[1])))
    rows = list(s.scalars(query.order_by(m.FeedItem.updated_at.desc(), m.FeedItem.id.desc())
                          .limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].updated_at, rows[-1].id) if more and rows else None)


def unread_count(s: Session, reader: Reader) -> int:
    return s.execute(select(func.count()).select_from(m.FeedItem).where(
        reader.where(), m.FeedItem.unread)).scalar_one()


def unread_counts(s: Session, tenant: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Unread counts for many receivers in one query (for live fan-out)."""
    counts: dict[tuple[str, str], int] = {k: 0 for k in keys}
    for start in range(0, len(keys), 2000):
        chunk = keys[start:start + 2000]
        rows = s.execute(select(m.FeedItem.receiver_kind, m.FeedItem.receiver_id, func.count())
                         .where(m.FeedItem.tenant_id == tenant, m.FeedItem.unread,
                                tuple_(m.FeedItem.receiver_kind, m.FeedItem.receiver_id)
                                .in_(chunk))
                         .group_by(m.FeedItem.receiver_kind, m.FeedItem.receiver_id))
        counts.update({(kind, rid): n for kind, rid, n in rows})
    return counts


def mark_read(s: Session, reader: Reader, item_id: int) -> m.FeedItem | None:
    item = s.scalars(select(m.FeedItem).where(reader.where(), m.FeedItem.id == item_id)
                     .with_for_update()).first()
    if item is not None and item.unread:
        item.unread, item.read_at = False, utcnow()
    return item


def mark_all_read(s: Session, reader: Reader) -> int:
    result = s.execute(update(m.FeedItem).where(reader.where(), m.FeedItem.unread)
                       .values(unread=False, read_at=utcnow()))
    return result.rowcount or 0


def replay(s: Session, reader: Reader, after_seq: int, limit: int = 500) -> list[m.FeedItem]:
    return list(s.scalars(select(m.FeedItem).where(reader.where(), m.FeedItem.seq > after_seq)
                          .order_by(m.FeedItem.seq).limit(limit)))
