"""Dramatiq middleware for what every actor shares: log context and run-time metrics.

While a worker thread processes a message, every log line carries the message's
``actor``, ``queue`` and ``message_id`` (bound in ``router.core.logs.CONTEXT``), and
its run time lands in ``herald_actor_seconds{actor, outcome}`` (outcome ``done``,
``failed`` (the actor raised; Dramatiq's retries take over) or ``skipped``). The actors
themselves count only their domain outcomes (deliveries sent, events routed).
"""

from __future__ import annotations

import threading
import time
from contextvars import Token
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from router.core import metrics
from router.core.logs import CONTEXT


class ActorContext(dramatiq.Middleware):
    """Binds the log context and times each message, per worker thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy
                               ) -> None:
        token = CONTEXT.set({"actor": message.actor_name, "queue": message.queue_name,
                             "message_id": message.message_id})
        self._local.running = (token, time.perf_counter())

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy,
                              *, result: Any = None, exception: BaseException | None = None
                              ) -> None:
        self._done(message, "failed" if exception is not None else "done")

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy
                           ) -> None:
        self._done(message, "skipped")

    def _done(self, message: MessageProxy, outcome: str) -> None:
        running: tuple[Token[dict[str, str] | None], float] | None = getattr(
            self._local, "running", None)
        if running is None:
            return
        token, started = running
        self._local.running = None
        metrics.ACTOR_SECONDS.labels(message.actor_name, outcome).observe(
            time.perf_counter() - started)
        CONTEXT.reset(token)
