"""The route lanes of one worker process (fair lanes, docs/decisions.md).

A tenant publishing in bulk routes on the bulk lane (`herald.route.bulk`), everyone else
on the live lane (`herald.route`). Each lane has its own route slots, so a bulk backlog
never holds the slots a live job needs; and a bulk job starts, writes and announces only
while no live job runs in this process (waiting at most ``patience_s`` each time),
because both share one GIL and one core: three route jobs at once gave a live job a
third of the CPU, and W9 measured its quiet tenant's p99 at 1.3 s beside a
20,000-event burst.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RouteLanes:
    def __init__(self, slots: int, patience_s: float = 1.0) -> None:
        self.live_slots = threading.BoundedSemaphore(slots)
        self.bulk_slots = threading.BoundedSemaphore(slots)
        self.patience_s = patience_s  # a bulk job's longest wait for live jobs to finish
        self._live = 0  # live jobs running or waiting for a slot
        self._quiet = threading.Condition()

    @contextmanager
    def live(self) -> Iterator[None]:
        with self._quiet:
            self._live += 1
        try:
            with self.live_slots:
                yield
        finally:
            with self._quiet:
                self._live -= 1
                if not self._live:
                    self._quiet.notify_all()

    @contextmanager
    def bulk(self) -> Iterator[None]:
        with self.bulk_slots:
            self.give_way()
            yield

    def give_way(self) -> None:
        """A bulk job's pause between its phases while live jobs run (at most patience_s):
        waiting, it holds no GIL, so a live job runs as if alone."""
        with self._quiet:
            self._quiet.wait_for(lambda: not self._live, self.patience_s)
