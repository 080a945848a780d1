"""Digests at release: the rows sharing a digest key go out as one message.

A message for any row of a digest makes the worker claim every due row of its key at
once (under a transaction advisory lock on the key: two workers woken by two messages
of one digest never split it), and freeze the group: the key becomes ``key#<leader id>`` on
every member, so a retry (a failed send, a worker killed mid-send whose claim was
released) claims exactly the same rows again and sends the same message with the same
Message-ID. A row that comes later opens a new window under the plain key. Each event
is in one digest; a crash between the send and its record re-sends that one digest
(the documented crash window of every channel), never a different one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.orm import Session

from router.core.enums import Channel, DeliveryStatus
from router.delivery.contracts import DeliveryContent, DigestItem, Job, Outcome
from router.delivery.deliveries import log_lines
from router.store import models as m
from router.store.db import one_of
from router.store.models import utcnow

D = cast(Table, m.Delivery.__table__)
GRACE = timedelta(seconds=1)  # rows due this soon join the digest being sent
FROZEN = "#"
MEMBERS = "digest_members"  # Job.extra: the other delivery ids a merged job sends for
ANY = {"en": "{count} new notifications", "de": "{count} neue Benachrichtigungen"}
MAX_ITEMS = 50  # a digest lists at most this many events (the count says how many in all)


def gather(s: Session, channel: Channel, ids: list[int], rows: list[Any], lease_s: float,
           worker: str | None) -> list[Any]:
    """Claim the due digests that these delivery ids belong to, each as a whole (every due
    row of its key, under a transaction advisory lock on the key, so two workers woken by
    two messages of one digest never split it), and freeze each group; returns ``rows``
    (claimed already, outside digests) plus the digests' rows."""
    now = utcnow()
    keys = sorted({(r[0], r[1]) for r in s.execute(select(D.c.tenant_id, D.c.digest_key).where(
        one_of(s, D.c.id, ids), D.c.channel == channel, D.c.status == DeliveryStatus.PENDING,
        D.c.digest_key.is_not(None), D.c.next_attempt_at <= now + GRACE))})
    if not keys:
        return rows
    postgres = s.get_bind().dialect.name == "postgresql"
    taken = {r.id: r for r in rows}
    for tenant, key in keys:
        if postgres:  # one order for every worker: no deadlock between two
            s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 11))"),
                      {"k": f"digest|{tenant}|{key}"})
        more = list(s.execute(
            update(D).where(D.c.tenant_id == tenant, D.c.digest_key == key,
                            D.c.channel == channel, D.c.status == DeliveryStatus.PENDING,
                            D.c.next_attempt_at <= now + GRACE)
            .values(status=DeliveryStatus.SENDING, attempts=D.c.attempts + 1, updated_at=now,
                    lease_until=now + timedelta(seconds=lease_s), worker_id=worker)
            .returning(*D.c)))
        log_lines(s, ((r.id, DeliveryStatus.SENDING, f"attempt {r.attempts} (in a digest)")
                      for r in more))
        taken.update({r.id: r for r in more})
    return _freeze(s, list(taken.values()))


def _freeze(s: Session, rows: list[Any]) -> list[Any]:
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        if row.digest_key and FROZEN not in row.digest_key:
            groups[(row.tenant_id, row.digest_key)].append(row)
    if not groups:
        return rows
    changes = [{"b_id": r.id, "b_key": f"{key}{FROZEN}{min(x.id for x in group)}"}
               for (_tenant, key), group in groups.items() for r in group]
    s.execute(update(D).where(D.c.id == bindparam("b_id"))
              .values(digest_key=bindparam("b_key"))
              .execution_options(synchronize_session=False), changes)
    frozen = {c["b_id"]: c["b_key"] for c in changes}
    return [SimpleNamespace(**{**r._asdict(), "digest_key": frozen[r.id]}) if r.id in frozen
            else r for r in rows]


def merge(jobs: list[Job], rows: list[Any]) -> list[Job]:
    """One job per digest group (the leader, the lowest id, with every member's event
    listed in its content); jobs outside digests, and groups of one, unchanged."""
    key_of = {r.id: r.digest_key for r in rows}
    groups: dict[tuple[str, str], list[Job]] = defaultdict(list)
    out: list[Job] = []
    for job in jobs:
        key = key_of.get(job.id)
        if key:
            groups[(job.tenant, key)].append(job)
        else:
            out.append(job)
    for group in groups.values():
        out.append(group[0] if len(group) == 1 else _merged(sorted(group, key=lambda j: j.id)))
    return sorted(out, key=lambda j: j.id)


def _merged(group: list[Job]) -> Job:
    leader = group[0]
    ordered = sorted(group, key=lambda j: (j.content.get("created_at", ""), j.id))
    items = [DigestItem(title=j.content.get("title", ""), message=j.content.get("message", ""),
                        link=j.content.get("link", ""), at=j.content.get("created_at", ""),
                        event_type=j.event.get("type", ""), event_id=j.event.get("id", ""))
             for j in ordered]
    count = len(items)
    lang = leader.content.get("language", "en")
    same_type = len({i["event_type"] for i in items}) == 1
    template = (leader.content.get("digest_title") if same_type else None) or ANY.get(
        lang, ANY["en"])
    content = cast(DeliveryContent, {
        **leader.content, "title": template.replace("{count}", str(count)),
        "message": ordered[-1].content.get("message", ""),  # the latest, for a push's body
        "digest": {"count": count, "items": items[-MAX_ITEMS:]}})
    return Job(id=leader.id, tenant=leader.tenant, channel=leader.channel,
               receiver_kind=leader.receiver_kind, receiver_id=leader.receiver_id,
               strategy=leader.strategy, attempts=leader.attempts, content=content,
               event=ordered[-1].event, feed_item_id=leader.feed_item_id,
               extra={**leader.extra, MEMBERS: [j.id for j in group[1:]]})


def expand(jobs: list[Job], outcomes: dict[int, Outcome]) -> dict[int, Outcome]:
    """Each member of a merged job gets its leader's outcome."""
    out = dict(outcomes)
    for job in jobs:
        members = job.extra.get(MEMBERS)
        if not members or job.id not in outcomes:
            continue
        lead = outcomes[job.id]
        count = len(members) + 1
        out[job.id] = Outcome(lead.status, _in_digest(lead.detail, count, job.id, True),
                              lead.retry_after, lead.provider_ref, lead.gone)
        for member in members:
            out[member] = Outcome(lead.status, _in_digest(lead.detail, count, job.id, False),
                                  lead.retry_after, lead.provider_ref, lead.gone)
    return out


def _in_digest(detail: str, count: int, leader: int, lead: bool) -> str:
    where = "as its first" if lead else f"with delivery {leader}"
    return f"in a digest of {count} events ({where}): {detail}" if detail \
        else f"in a digest of {count} events ({where})"
