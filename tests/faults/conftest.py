"""Fault-injection helpers: figures are appended to artifacts/fault-figures.json."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import redis

from tests.conftest import ROOT

FIGURES = Path(ROOT) / "artifacts" / "fault-figures.json"
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port",
               "6379", "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
               "--logfile", "/var/log/redis/ci.log"]


def record(name: str, **figures: object) -> None:
    FIGURES.parent.mkdir(exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[name] = figures
    FIGURES.write_text(json.dumps(data, indent=2))
    print(f"\n{name}: {figures}")


def redis_stop() -> None:
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], check=False,
                   capture_output=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and redis_up():
        time.sleep(0.1)


def redis_start() -> None:
    subprocess.run(REDIS_START, check=True, capture_output=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not redis_up():
        time.sleep(0.1)
    assert redis_up(), "redis did not come back"


def redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False
