"""The browser channel: the feed item (written by the router) plus a live message.

``send`` publishes each item with the receiver's new unread count to every open
websocket session, on any API replica. Under ``all`` that is the success; under
``first_success`` the delivery waits for a session's ack (DESIGN §2).
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy.orm import Session

from router.core.enums import Channel, OutcomeStatus, Strategy
from router.delivery import feed
from router.delivery.contracts import Adapter, Job, Outcome


class BrowserAdapter(Adapter):
    channel: ClassVar[Channel] = Channel.BROWSER
    batch_size: ClassVar[int] = 1000

    def prepare(self, s: Session, jobs: list[Job]) -> None:
        entries = feed.live_entries(s, [
            feed.LiveTarget(j.id, j.tenant, j.receiver_kind, j.receiver_id, j.feed_item_id,
                            j.strategy == Strategy.FIRST_SUCCESS) for j in jobs])
        for job in jobs:
            if job.id in entries:
                job.extra["entry"] = entries[job.id]

    def send(self, jobs: list[Job]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        entries = []
        for job in jobs:
            if "entry" not in job.extra:
                outcomes[job.id] = Outcome.failed("the feed item no longer exists")
                continue
            entries.append(job.extra["entry"])
            outcomes[job.id] = (Outcome(OutcomeStatus.AWAITING_ACK, "published; waiting for ack")
                                if job.extra["entry"]["delivery"] else Outcome.sent("published live"))
        if entries:
            try:
                self.ctx.live.publish(entries)
            except Exception as exc:  # noqa: BLE001 - pub/sub down: the feed row is the truth
                return {j.id: Outcome.retry(f"live publish failed: {exc}") for j in jobs}
        return outcomes
