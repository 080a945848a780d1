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

    def start(self) -> None:
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1",
                        "--port", str(self.port), "--save", "", "--appendonly", "no",
                        "--dir", str(self.folder), "--pidfile", str(self.folder / "redis.pid"),
                        "--logfile", str(self.folder / "redis.log")],
                       check=True, capture_output=True)
        self._wait(up=True)

    def stop(self) -> None:
        try:
            redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2).shutdown(nosave=True)
        except redis.RedisError:
            pass  # shutdown closes the connection under us
        self._wait(up=False)

    def up(self) -> bool:
        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5).ping())
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
    if server.up():
        server.stop()
