"""The browser channel: the feed item (written by the router) plus a live message.

``send`` publishes each item with the receiver's new unread count to every open
websocket session, on any API replica. Under ``all`` that is the success; under
``first_success`` the delivery waits for a session's ack (DESIGN §2).
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.base import Adapter, Job, Outcome
from router import feed
from router import models as m
from router.enums import Channel, OutcomeStatus, Strategy


class BrowserAdapter(Adapter):
    channel: ClassVar[Channel] = Channel.BROWSER
    batch_size: ClassVar[int] = 1000

    def prepare(self, s: Session, jobs: list[Job]) -> None:
        ids = [j.feed_item_id for j in jobs if j.feed_item_id]
        items = {i.id: i for i in s.scalars(select(m.FeedItem).where(m.FeedItem.id.in_(ids)))}
        by_tenant: dict[str, list[tuple[str, str]]] = {}
        for job in jobs:
            by_tenant.setdefault(job.tenant, []).append((job.receiver_kind, job.receiver_id))
        counts = {(t, *k): n for t, keys in by_tenant.items()
                  for k, n in feed.unread_counts(s, t, keys).items()}
        for job in jobs:
            item = items.get(job.feed_item_id or 0)
            if item is not None:
                job.extra["item"] = feed.item_json(item)
                job.extra["unread"] = counts.get((job.tenant, job.receiver_kind, job.receiver_id), 0)

    def send(self, jobs: list[Job]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        entries = []
        for job in jobs:
            if "item" not in job.extra:
                outcomes[job.id] = Outcome.failed("the feed item no longer exists")
                continue
            wants_ack = job.strategy == Strategy.FIRST_SUCCESS
            entries.append({"tenant": job.tenant, "kind": job.receiver_kind,
                            "id": job.receiver_id, "item": job.extra["item"],
                            "unread": job.extra["unread"],
                            "delivery": job.id if wants_ack else None})
            outcomes[job.id] = (Outcome(OutcomeStatus.AWAITING_ACK, "published; waiting for ack")
                                if wants_ack else Outcome.sent("published live"))
        if entries:
            try:
                self.runtime.live.publish(entries)
            except Exception as exc:  # noqa: BLE001 - pub/sub down: the feed row is the truth
                return {j.id: Outcome.retry(f"live publish failed: {exc}") for j in jobs}
        return outcomes
