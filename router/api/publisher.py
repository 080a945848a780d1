"""The publish path: rate limit, store, then hand the new events to routing.

Single-event POSTs are stored by group commit (decision 85): the request hands its
event to one publisher thread and awaits it; the thread takes every request waiting
at that moment, spends their rate-limit tokens in one Redis round trip, stores them
in one transaction (one INSERT per tenant, one commit), then enqueues one route
request per tenant. Each request is still answered only after its event is
committed, a republished id still answers what is stored, and a request the
limiter refuses is refused alone. If a group's transaction fails, each of its
requests is stored again on its own, so one request's error is never another's
(unless the database is unreachable: then they all get its 503 at once).

At low rates a group is one request, and the cost is today's; at 200 POST/s the
requests that arrive while a group commits share the next one. Batch publishes
(`POST /v1/events:batch`) are a group already and go through `publish_now` in
their request's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from router.core.metrics import PUBLISH_GROUP
from router.routing.events import Event
from router.routing.pipeline import Published, publish
from router.runtime import Runtime

log = logging.getLogger("herald.api.publisher")

GROUP_EVENTS = 1000  # at most this many events in one group's transaction


@dataclass
class _Request:
    tenant: str
    events: list[Event]
    future: Future[list[Published]] = field(default_factory=Future)
    recent: float = 0.0  # the tenant's recent volume, from the limiter


class Publisher:
    """One per API process: `submit` queues a request for the group-commit thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, tenant: str, events: list[Event]) -> Future[list[Published]]:
        """The events' answers once they are committed (or the error that refused them)."""
        request = _Request(tenant, events)
        with self._lock:
            if self._thread is None:  # the first publish, or the first after a close
                self._thread = threading.Thread(target=self._run, args=(self._queue,),
                                                name="herald-publisher", daemon=True)
                self._thread.start()
            self._queue.put(request)
        return request.future

    def publish_now(self, tenant: str, events: list[Event]) -> list[Published]:
        """Publish in the calling thread (a batch: already a group of its own)."""
        request = _Request(tenant, events)
        request.future.set_running_or_notify_cancel()
        if self._admit([request]):
            self._store_and_route([request])
        return request.future.result(timeout=0)

    def close(self) -> None:
        """Answer what was submitted, then stop the thread (an app served again, as a
        test client does, starts another on its first publish)."""
        with self._lock:
            thread, self._thread = self._thread, None
            waiting, self._queue = self._queue, queue.SimpleQueue()
        if thread is not None:
            waiting.put(None)  # after every request already in it
            thread.join(timeout=10)

    # -- the group-commit thread ------------------------------------------------------

    def _run(self, requests: queue.SimpleQueue[_Request | None]) -> None:
        while True:
            first = requests.get()
            if first is None:
                return
            group, size, stop = [first], len(first.events), False
            while size < GROUP_EVENTS:
                try:
                    more = requests.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
                size += len(more.events)
            try:
                self._group(group)
            except BaseException as exc:  # noqa: BLE001 - every waiting request gets an answer
                log.exception("publisher.group_failed")
                for request in group:
                    if not request.future.done():
                        request.future.set_exception(exc)
            if stop:
                return

    def _group(self, group: list[_Request]) -> None:
        # a request whose client went away before its turn is not stored: it got no 202
        live = [r for r in group if r.future.set_running_or_notify_cancel()]
        admitted = self._admit(live)
        if admitted:
            self._store_and_route(admitted)

    def _admit(self, requests: list[_Request]) -> list[_Request]:
        """Spend each request's tokens (one round trip for all); refuse those over."""
        if not requests:
            return []
        takes = self.runtime.limiter.take_many([(r.tenant, len(r.events)) for r in requests])
        admitted = []
        for request, outcome in zip(requests, takes, strict=True):
            if isinstance(outcome, BaseException):
                request.future.set_exception(outcome)
            else:
                request.recent = outcome
                admitted.append(request)
        return admitted

    def _store_and_route(self, requests: list[_Request]) -> None:
        try:
            answers = self._store(requests)
        except Exception as exc:  # noqa: BLE001 - handed to the requests (or each, alone)
            if len(requests) == 1 or isinstance(exc, OperationalError):  # the database is down:
                for request in requests:  # trying each alone would only make them all wait
                    request.future.set_exception(exc)
                return
            answers = {}
            for request in requests:  # alone, each request's error is its own
                try:
                    answers.update(self._store([request]))
                except Exception as alone:  # noqa: BLE001 - handed to its request
                    request.future.set_exception(alone)
            requests = [r for r in requests if id(r) in answers]
        self._route(requests, answers)
        for request in requests:
            request.future.set_result(answers[id(request)])

    def _store(self, requests: list[_Request]) -> dict[int, list[Published]]:
        """One transaction: one `publish` per tenant over its requests' events, in order."""
        by_tenant: dict[str, list[_Request]] = defaultdict(list)
        for request in requests:
            by_tenant[request.tenant].append(request)
        answers: dict[int, list[Published]] = {}
        with self.runtime.db.session() as s:
            for tenant, mine in by_tenant.items():
                published = publish(s, tenant, [e for r in mine for e in r.events])
                at = 0
                for request in mine:
                    answers[id(request)] = published[at:at + len(request.events)]
                    at += len(request.events)
        PUBLISH_GROUP.observe(sum(len(r.events) for r in requests))
        return answers

    def _route(self, requests: list[_Request], answers: dict[int, list[Published]]) -> None:
        """One route request per tenant for its new events; a stored event whose enqueue
        fails is accepted all the same: the sweeper enqueues it later."""
        after = self.runtime.config.api.bulk_lane_after
        fresh: dict[str, list[int]] = defaultdict(list)
        recent: dict[str, float] = defaultdict(float)
        for request in requests:
            fresh[request.tenant] += [p.pk for p in answers[id(request)] if p.new]
            recent[request.tenant] = max(recent[request.tenant], request.recent)
        for tenant, pks in fresh.items():
            if not pks:
                continue
            try:
                self.runtime.workers.enqueue_route(pks, 0 < after <= recent[tenant], tenant)
            except Exception as exc:  # noqa: BLE001 - stored is accepted: the sweeper enqueues
                log.warning("publish.enqueue_failed", extra={"tenant": tenant, "error": str(exc),
                                                              "events": len(pks)})
