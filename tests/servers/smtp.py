"""SMTP sink on aiosmtpd with scriptable failures.

Scripted answers:
- ``reject(address)``: the ``RCPT TO`` for that address gets the given permanent
  code (default 550); other recipients of the same transaction are still accepted.
- ``fail_next(n)``: the next ``n`` ``DATA`` commands (after the message body is
  received) get the given transient code (default 451); the message goes to ``refused``.
- ``data_delay_s``: every ``DATA`` answer waits this long (a slow server).
- ``on_accept``: a callable run after a message is recorded, before the 250 is sent.

``envelopes[i].raw`` holds the bytes as received (CRLF); ``messages`` are parsed with
``email.policy.default`` after CRLF -> LF, so ``get_content()`` ends lines with ``\n``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as _AioEnvelope

from ._common import LOOPBACK, free_port, wait_for_items

SERVER_HOSTNAME = "herald-smtp-sink"


@dataclass(frozen=True)
class Envelope:
    """SMTP envelope of an accepted message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True)
class _Answer:
    code: int
    text: str

    def line(self) -> str:
        return f"{self.code} {self.text}"


class _Handler:
    """aiosmtpd handler delegating decisions to the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(  # aiosmtpd hook name
        self,
        server: SMTP,
        session: Session,
        envelope: _AioEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        rejection = self._sink._rejection_for(address)
        if rejection is not None:
            return rejection.line()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: _AioEnvelope
    ) -> str:
        raw = envelope.content
        assert isinstance(raw, bytes)
        if self._sink.data_delay_s:
            await asyncio.sleep(self._sink.data_delay_s)
        failure = self._sink._next_data_failure()
        if failure is not None:
            self._sink.refused.append(_parse(raw))
            return failure.line()
        self._sink._record(Envelope(envelope.mail_from or "", tuple(envelope.rcpt_tos), raw))
        if self._sink.on_accept is not None:
            self._sink.on_accept()
        return "250 Message accepted for delivery"


class SmtpSink:
    """Local SMTP server recording every accepted message."""

    host = LOOPBACK

    def __init__(self) -> None:
        self._port: int | None = None
        self._controller: Controller | None = None
        self._cond = threading.Condition()
        self._rejections: dict[str, _Answer] = {}
        self._data_failures: deque[_Answer] = deque()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.refused: list[EmailMessage] = []  # messages whose DATA got a scripted failure
        self.on_accept: Callable[[], None] | None = None  # runs before the 250 goes out
        self.data_delay_s = 0.0  # a slow server: each DATA answer waits this long

    @property
    def port(self) -> int:
        """Listening port (assigned on first start, kept across restarts)."""
        if self._port is None:
            raise RuntimeError("SmtpSink not started")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the sink is currently accepting connections."""
        return self._controller is not None

    def start(self) -> Self:
        """Start listening (on the previous port if restarted)."""
        if self._controller is not None:
            return self
        if self._port is None:
            self._port = free_port(self.host)
        controller = Controller(
            _Handler(self), hostname=self.host, port=self._port, server_hostname=SERVER_HOSTNAME
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening; connections are refused until ``start`` (idempotent)."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def reject(self, address: str, code: int = 550, text: str = "5.1.1 no such user") -> None:
        """Answer ``RCPT TO:<address>`` with ``code text`` (case-insensitive match)."""
        with self._cond:
            self._rejections[address.lower()] = _Answer(code, text)

    def accept_all(self) -> None:
        """Drop every scripted rejection and pending failure."""
        with self._cond:
            self._rejections.clear()
            self._data_failures.clear()

    def fail_next(
        self, n: int = 1, code: int = 451, text: str = "4.3.0 temporary failure, try again"
    ) -> None:
        """Make the next ``n`` DATA commands answer ``code text``."""
        with self._cond:
            self._data_failures.extend(_Answer(code, text) for _ in range(n))

    def clear(self) -> None:
        """Forget received messages (scripted answers are kept)."""
        with self._cond:
            self.messages.clear()
            self.envelopes.clear()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until at least ``n`` messages were accepted; return them."""
        return wait_for_items(self._cond, self.messages, n, timeout, "SMTP messages")

    def _rejection_for(self, address: str) -> _Answer | None:
        with self._cond:
            return self._rejections.get(address.lower())

    def _next_data_failure(self) -> _Answer | None:
        with self._cond:
            return self._data_failures.popleft() if self._data_failures else None

    def _record(self, envelope: Envelope) -> None:
        message = _parse(envelope.raw)
        with self._cond:
            self.envelopes.append(envelope)
            self.messages.append(message)
            self._cond.notify_all()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _parse(raw: bytes) -> EmailMessage:
    unix_text = raw.replace(b"\r\n", b"\n")  # like a mailbox: LF line endings
    message = BytesParser(policy=policy.default).parsebytes(unix_text)
    assert isinstance(message, EmailMessage)
    return message


__all__ = ["Envelope", "SmtpSink"]
