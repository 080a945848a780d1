"""Real Herald processes for end-to-end tests: `herald serve` and `herald worker`
subprocesses against the machine's PostgreSQL and Redis (or embedded SQLite)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from tests.conftest import PG_URL, ROOT, RULES

REDIS_BASE = "redis://127.0.0.1:6379"
REDIS_DBS = range(1, 15)  # 0 holds the in-process tests' keys, 15 is the benchmark's


def claim_redis_db() -> tuple[int, int]:
    """A Redis DB of the machine's server that no other running deployment holds, in this
    test process or another (pytest-xdist workers, a second developer's run): an exclusive
    lock on a file per DB, held until ``release_redis_db`` closes the returned descriptor
    (or the process ends). Blocks only when all 14 are held."""
    folder = Path(tempfile.gettempdir())
    order = random.sample(list(REDIS_DBS), len(REDIS_DBS))
    for db in order:
        fd = os.open(folder / f"herald-test-redis-db-{db}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return db, fd
        except BlockingIOError:
            os.close(fd)
    fd = os.open(folder / f"herald-test-redis-db-{order[0]}.lock", os.O_CREAT | os.O_RDWR, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return order[0], fd


def release_redis_db(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):  # closed already
            os.close(fd)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1,
               what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Herald:
    """A Herald deployment made of subprocesses sharing one config."""

    def __init__(self, tmp: Path, *, embedded: bool = False, redis_base: str = REDIS_BASE,
                 **config: Any) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._db_lock: weakref.finalize | None = None
        if embedded or redis_base != REDIS_BASE:
            self.redis_db = 0  # embedded: no Redis; a private server: all of it is ours
        else:
            self.redis_db, fd = claim_redis_db()
            # stop() gives the DB back; a deployment a test forgets to stop, when collected
            self._db_lock = weakref.finalize(self, release_redis_db, fd)
        self.config: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp}/herald.db" if embedded else PG_URL,
            "broker_url": "" if embedded else f"{redis_base}/{self.redis_db}",
            "rules_path": str(Path(ROOT) / "rules"),
            "public_url": self.url,
            "log_format": "json",
            "delivery": {"sweep_interval_s": 1, "sweep_after_s": 3, "lease_s": 20,
                         "backoff_min_s": 0.5,
                         "backoff_max_s": 2, "presence_window_s": 1.5,
                         "heartbeat_s": 1, "dead_after_s": 5, "lost_after_s": 3,
                         "breaker_cooldown_s": 1, "breaker_cooldown_max_s": 2,
                         "breaker_probe_s": 2},
            "api": {"publish_rate_per_s": 100000, "publish_burst": 100000},
            # the local push and FCM servers of tests/servers listen here
            "outbound": {"allow": ["127.0.0.1"]},
        }
        _merge(self.config, config)
        self.config_file = tmp / f"herald-{self.port}.yaml"
        self.config_file.write_text(yaml.safe_dump(self.config))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # processes follow the rule set deployed in the database, which the deployments of
        # a test session share: other rule files are deployed at the first start and the
        # shipped rules deployed again by stop()
        self.own_rules = not embedded and "rules_path" in config
        self.rules_deployed = False
        if not embedded:
            with redis.Redis.from_url(f"{redis_base}/{self.redis_db}") as client:
                client.flushdb()

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        env["HERALD_CONFIG"] = str(self.config_file)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.tmp / "metrics")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def deploy_rules(self, path: str | Path, message: str = "") -> subprocess.CompletedProcess[str]:
        """`herald rules deploy`; stop() deploys the shipped rules again."""
        self.rules_deployed = True
        return self.cli("rules", "deploy", str(path), "-m", message)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        if self.own_rules and not self.rules_deployed:
            done = self.deploy_rules(self.config["rules_path"], "test rules")
            assert done.returncode == 0, done.stdout + done.stderr
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "router.cli", *args], cwd=ROOT,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[name] = proc
        return proc

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "router.cli", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=120)

    def start_api(self, name: str = "api") -> None:
        self._spawn(name, "serve", "--port", str(self.port))
        wait_until(self._healthy, 30, what=f"{name} on {self.url}")

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, name: str = "worker", threads: int = 4) -> subprocess.Popen[bytes]:
        proc = self._spawn(name, "worker", "--threads", str(threads))
        wait_until(lambda: b"running" in (self.tmp / f"{name}.log").read_bytes(), 30,
                   what=f"{name} start")
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.rules_deployed:
            self.rules_deployed = False
            self.cli("rules", "deploy", RULES, "-m", "shipped rules again")
        if self._db_lock is not None:
            self._db_lock()  # runs once


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


class Client:
    """A tenant's service-side HTTP client."""

    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def activity(self, event_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/events/{event_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_terminal(self, event_id: str, timeout: float = 30) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def done() -> dict[str, Any] | None:
            seen.update(self.activity(event_id))
            if seen["status"] == "routed" and all(
                    d["status"] in ("sent", "failed", "skipped") for d in seen["deliveries"]):
                return seen
            return None
        try:
            return wait_until(done, timeout, 0.2, what=f"event {event_id} to finish")
        except AssertionError as e:
            raise AssertionError(f"{e}; its activity: {seen}") from None


DELIVERY_ID = re.compile(r"<herald\.(\d+)\.")  # a mail's Message-ID names its delivery


def own_mails(sink: Any, pg: Any, tenant: str) -> list[Any]:
    """The mails of this test's tenant: the session's tests share a schema, so a sweeping
    worker may also send another test's leftover pending mail to this sink."""
    from sqlalchemy import select

    from router.store import models as m

    with pg.session() as s:
        ours = {str(i) for i in s.scalars(select(m.Delivery.id).where(
            m.Delivery.tenant_id == tenant, m.Delivery.channel == "email"))}
    return [msg for msg in list(sink.messages)
            if (found := DELIVERY_ID.search(str(msg["Message-ID"]))) and found.group(1) in ours]

