"""Fault-injection helpers: figures are appended to artifacts/fault-figures.json.

Tests that stop Redis run their own redis-server on a free port (never the machine's)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import ROOT
from tests.harness import free_port

FIGURES = Path(ROOT) / "artifacts" / "fault-figures.json"


def record(name: str, **figures: object) -> None:
    FIGURES.parent.mkdir(exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[name] = figures
    FIGURES.write_text(json.dumps(data, indent=2))
    print(f"\n{name}: {figures}")


class PrivateRedis:
    """A redis-server of this test alone, on a free port kept across restarts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # in the foreground, as our child: stop() kills it outright (a crash, as a Redis
        # restart is; a SHUTDOWN took 4-12 s to let the port go on this machine)
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait(up=True)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
        self._wait(up=False)

    def up(self) -> bool:
        try:
            # retry=None: redis-py 8 retries a refused connection for ~4 s by default
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5,
                                    retry=None).ping())
        except redis.RedisError:
            return False

    def _wait(self, up: bool) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.up() != up:
            time.sleep(0.1)
        assert self.up() == up, f"private redis on {self.port} did not {'start' if up else 'stop'}"


@pytest.fixture
def private_redis(tmp_path):
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder)
    server.start()
    yield server
    server.stop()
