"""Snoozed feed items wake up (router/delivery/inbox.py): the database row's
``snoozed_until`` is the timer. A delayed message per snooze wakes its item on time; every
heartbeat the sweeper also wakes what is overdue by ``lost_after_s`` (a message lost with
a Redis restart, or never enqueued), so a wake-up is late at worst by that and a beat."""

from __future__ import annotations

import logging
from datetime import timedelta

from router.delivery import inbox
from router.store.models import utcnow
from workers.host import WorkerRuntime

log = logging.getLogger("herald.workers")


def wake_snoozed(runtime: WorkerRuntime, ids: list[int]) -> int:
    """The wake-up message's items that are due (one snoozed again for later waits)."""
    with runtime.db.session() as s:
        woken = inbox.wake(s, utcnow(), ids=ids)
    runtime.live.tell(woken)
    return len(woken)


def wake_overdue(runtime: WorkerRuntime) -> int:
    """The sweeper's pass: snoozed items whose wake-up message did not come."""
    late = utcnow() - timedelta(seconds=runtime.config.delivery.lost_after_s)
    with runtime.db.session() as s:
        woken = inbox.wake(s, late)
    if woken:
        log.warning("snooze.overdue_woken", extra={
            "items": len(woken), "tenants": sorted({w["tenant"] for w in woken})[:20]})
        runtime.live.tell(woken)
    return len(woken)
