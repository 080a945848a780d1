"""A counting SMTP sink in a child process, so that the sender being measured does not
share its GIL with the server. It accepts every message and counts it (no parsing)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.servers._common import free_port


class _Counter:
    def __init__(self, count: Any) -> None:
        self.count = count

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.count.get_lock():
            self.count.value += 1
        return "250 Message accepted"


def _serve(port: int, count: Any, stop: Any, ready: Any) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_Counter(count), hostname="127.0.0.1", port=port,
                            server_hostname="bench-sink", data_size_limit=0)
    controller.start()
    ready.set()
    try:
        stop.wait()
    finally:
        controller.stop()


class SmtpSinkProcess:
    def __init__(self, port: int, count: Any, pid: int | None = None) -> None:
        self.host, self.port, self._count = "127.0.0.1", port, count
        self.pid = pid or 0  # the sink's process (its CPU time: /proc/<pid>/stat)

    @property
    def count(self) -> int:
        return int(self._count.value)

    def wait_for(self, n: int, timeout: float) -> float:
        deadline = time.perf_counter() + timeout
        while self.count < n:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the SMTP sink got {self.count} of {n} mails in {timeout}s")
            time.sleep(0.01)
        return time.perf_counter()


@contextmanager
def smtp_sink() -> Iterator[SmtpSinkProcess]:
    ctx = multiprocessing.get_context("spawn")
    count, stop, ready = ctx.Value("q", 0), ctx.Event(), ctx.Event()
    port = free_port()
    proc = ctx.Process(target=_serve, args=(port, count, stop, ready), daemon=True)
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the SMTP sink did not start")
        yield SmtpSinkProcess(port, count, proc.pid)
    finally:
        stop.set()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
