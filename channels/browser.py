"""The browser channel: the feed item (written by the router) plus a live message.

Two ways in, one module:
- ``announce``, once per route batch, after its commit: one presence call for the
  batch's receivers; the online ones of a browser delivery under ``all`` get their item
  published live and a ``sent`` row ("published live"); the others keep none (the feed
  item is the record); receivers whose unread count changed without an item get an
  ``unread`` frame; ``first_success`` browser steps are sent through the adapter path now.
- ``prepare``/``send``, the adapter path for queued rows: publishes each item with the
  receiver's new unread count to every open websocket session, on any API replica.
  Under ``all`` that is the success; under ``first_success`` the delivery waits for a
  session's ack (DESIGN §2).
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar, Protocol

from sqlalchemy.orm import Session

from router.core import metrics
from router.core.enums import Channel, DeliveryStatus, OutcomeStatus, Strategy
from router.delivery import deliveries, feed
from router.delivery.contracts import (
    Adapter,
    Announcement,
    Job,
    Outcome,
    ReceiverKey,
    Settled,
)
from router.delivery.live import Addressed

log = logging.getLogger("herald.channels.browser")
PUBLISHED = "published live"


class Handoff(Protocol):
    """What the announce step needs from the worker that calls it."""

    def deliver(self, ids: list[int]) -> None:
        """Send browser rows through the adapter path now, in this thread."""

    def enqueue(self, ids: list[int]) -> None:
        """Put browser rows on the browser queue (retries with backoff)."""


class BrowserAdapter(Adapter):
    channel: ClassVar[Channel] = Channel.BROWSER
    batch_size: ClassVar[int] = 1000

    # ------------------------------------------------ after a route commit

    def announce(self, batch: Announcement, handoff: Handoff) -> None:
        """Announce a committed route batch to open sessions (no DB session held across
        the Redis calls). Presence is asked after the commit, and a websocket session
        registers before its hello reads the feed: a session either gets the message or
        sees the item in its first read."""
        online = self._online(batch)
        live = [t for t in batch.settled if online is None or t.key in online]
        metrics.DELIVERIES.labels(Channel.BROWSER, OutcomeStatus.SENT).inc(
            len(batch.settled) - len(live))  # settled at routing: no open session
        if live:
            self._publish(live, batch, handoff)
        quiet = batch.quiet if online is None else batch.quiet & online
        if quiet:
            self._tell_counts(quiet)
        if batch.awaiting:
            self._deliver_now(batch.awaiting, handoff)

    def _online(self, batch: Announcement) -> set[ReceiverKey] | None:
        """Who of the batch has an open session: one presence call; None when it cannot be
        told (everyone then counts as online)."""
        keys = {t.key for t in batch.settled} | batch.quiet
        return self.ctx.live.online(keys) if keys else set()

    def _publish(self, live: list[Settled], batch: Announcement, handoff: Handoff) -> None:
        """Publish the items of receivers with a session, then store their rows `sent`;
        if publishing fails, the rows are stored `pending` and queued (retries, backoff)."""
        started = time.perf_counter()
        try:
            entries = self._entries(live)
        except Exception:  # noqa: BLE001 - the feed rows are the record; sessions replay them
            log.warning("deliver.live_read_failed", extra={"deliveries": len(live)},
                        exc_info=True)
            return
        live = [live[i] for i in entries]  # an item gone meanwhile: nothing to announce
        lag = max(0.0, (self.ctx.now() - batch.routed_at).total_seconds())
        for _ in live:
            metrics.QUEUE_LAG.labels(Channel.BROWSER).observe(lag)
        try:
            self.ctx.live.publish(list(entries.values()))
        except Exception:  # noqa: BLE001 - the queued path retries with backoff
            log.warning("deliver.live_publish_failed", extra={"deliveries": len(live)},
                        exc_info=True)
            self._queue(live, batch, handoff)
            return
        published = time.perf_counter()
        metrics.DELIVERIES.labels(Channel.BROWSER, OutcomeStatus.SENT).inc(len(live))
        ids = self._store(live, batch, DeliveryStatus.SENT, PUBLISHED)
        log.info("deliver.live", extra={
            "channel": str(Channel.BROWSER), "deliveries": len(live), "delivery_ids": ids[:20],
            "sent": len(ids), "publish_s": round(published - started, 3),
            "record_s": round(time.perf_counter() - published, 3)})

    def _entries(self, live: list[Settled]) -> dict[int, dict[str, Any]]:
        """The live messages, by position in ``live`` (one short read)."""
        assert self.ctx.db is not None
        with self.ctx.db.session() as s:
            return feed.live_entries(s, [
                feed.LiveTarget(i, t.tenant, t.receiver_kind, t.receiver_id, t.feed_item_id)
                for i, t in enumerate(live)])

    def _queue(self, live: list[Settled], batch: Announcement, handoff: Handoff) -> None:
        ids = self._store(live, batch, DeliveryStatus.PENDING, "")
        if ids:
            handoff.enqueue(ids)

    def _store(self, live: list[Settled], batch: Announcement, status: DeliveryStatus,
               detail: str) -> list[int]:
        assert self.ctx.db is not None
        try:
            with self.ctx.db.session() as s:
                return deliveries.store_announced(s, live, status, detail, batch.routed_at)
        except Exception:  # noqa: BLE001 - the feed item stays the record of the delivery
            log.warning("deliver.live_record_failed", extra={"deliveries": len(live),
                                                             "status": str(status)},
                        exc_info=True)
            return []

    def _tell_counts(self, present: set[ReceiverKey]) -> None:
        """Receivers whose unread count grew without a live item message: their open
        sessions get an `unread` frame."""
        by_tenant: dict[str, list[tuple[str, str]]] = {}
        for tenant, kind, rid in present:
            by_tenant.setdefault(tenant, []).append((kind, rid))
        assert self.ctx.db is not None
        try:
            with self.ctx.db.session() as s:
                counts = {tenant: feed.counts_for(s, tenant, pairs)
                          for tenant, pairs in by_tenant.items()}
        except Exception:  # noqa: BLE001 - the feed row is the record; the next frame corrects it
            log.warning("deliver.counts_failed", extra={"receivers": len(present)},
                        exc_info=True)
            return
        self.ctx.live.tell([Addressed(tenant=tenant, kind=kind, id=rid, frame=n.frame())
                            for tenant, found in counts.items()
                            for (kind, rid), n in found.items()])

    def _deliver_now(self, ids: list[int], handoff: Handoff) -> None:
        """first_success browser steps: the adapter path now (no queue hop); on failure the
        rows stay pending and go through the queue."""
        try:
            handoff.deliver(ids)
        except Exception:  # noqa: BLE001 - the queue takes over; nothing is lost
            log.warning("deliver.inline_failed", extra={"channel": str(Channel.BROWSER)},
                        exc_info=True)
            handoff.enqueue(ids)

    # ------------------------------------------------ the adapter path (queued rows)

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
                                if job.extra["entry"]["delivery"] else Outcome.sent(PUBLISHED))
        if entries:
            try:
                self.ctx.live.publish(entries)
            except Exception as exc:  # noqa: BLE001 - pub/sub down: the feed row is the truth
                return {j.id: Outcome.retry(f"live publish failed: {exc}") for j in jobs}
        return outcomes
