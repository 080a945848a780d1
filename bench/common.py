"""Shared plumbing for `python -m bench`: sizes, progress lines, result rows, a
PostgreSQL schema per workload, and Herald deployments made of real
`herald serve` / `herald worker` subprocesses.

Isolation (other people run tests on the same machine at the same time):
every workload works in a schema of its own (``bench_<random>``, dropped at the
end) and in Redis DB ``HERALD_BENCH_REDIS_DB`` (default 15, the only DB flushed).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml
from sqlalchemy import text

from router.store.db import Database
from tests.harness import Herald, _merge, free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
PG_BASE = os.environ.get("HERALD_BENCH_DATABASE_URL",
                         "postgresql://postgres@127.0.0.1:5432/test")
REDIS_DB = int(os.environ.get("HERALD_BENCH_REDIS_DB", "15"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
STARTED = time.perf_counter()
# Sweeps would re-enqueue deliveries that a route-only worker leaves pending.
NO_SWEEP = {"sweep_interval_s": 3600, "sweep_after_s": 7200}


# ---------------------------------------------------------------- progress


def progress(message: str) -> None:
    """One progress line, with the time since the command started."""
    print(f"[{time.perf_counter() - STARTED:7.1f}s] {message}", flush=True)


# ---------------------------------------------------------------- sizes


@dataclass
class Sizes:
    """Every size a workload uses; `--smoke` shrinks them, flags override one by one."""

    smoke: bool = False
    # raw limits
    raw_rules_events: int = 3000
    raw_pg_rows: int = 100_000
    raw_redis_pushes: int = 100_000
    raw_encryptions: int = 2000
    # W1 routing
    w1_events: int = 10_000
    w1_warmup: int = 1000
    w1_employees: int = 10_000
    w1_extra_rules: int = 200
    w1_threads: int = 8
    # W2 fan-out
    w2_admins: int = 50_000
    w2_clients: int = 500
    w2_peer: bool = True
    # W3 live latency
    w3_clients: int = 500
    w3_rate: float = 200.0
    w3_seconds: float = 30.0
    w3_replicas: int = 1
    # W4 feed reads
    w4_rows: int = 1_000_000
    w4_users: int = 10_000
    w4_samples: int = 2000
    # W5 channels
    w5_mails: int = 2000
    w5_apprise_mails: int = 200
    w5_pushes: int = 1000
    # W6 memory
    w6_events: int = 1_000_000
    w6_minutes: float = 9.0
    w6_warmup: int = 20_000
    w6_chunk: int = 5000
    # W7 timers (#15): timers due evenly over w7_seconds, a live probe beside them
    w7_timers: int = 100_000
    w7_seconds: float = 60.0
    w7_rate: float = 20.0  # live probe: events/s
    w7_clients: int = 50  # live probe: websockets
    w7_baseline_seconds: float = 60.0  # the probe without timers
    # W8 idle
    w8_seconds: float = 30.0
    # W9 fairness (#17): a burst of one tenant's events beside another tenant's live probe
    w9_burst: int = 20_000  # bulk tenant's events, published in batches of 1,000
    w9_rate: float = 10.0  # quiet tenant's live probe: events/s
    w9_clients: int = 20  # quiet tenant's live probe: websockets
    w9_baseline_seconds: float = 20.0  # the probe without the burst
    w9_cap_seconds: float = 120.0  # the probe beside the burst stops then at the latest
    w9_bulk_clients: int = 3  # bulk tenant's websockets (receivers of every bulk event)

    @classmethod
    def for_mode(cls, smoke: bool) -> Sizes:
        if not smoke:
            return cls()
        return cls(smoke=True, raw_rules_events=300, raw_pg_rows=5000, raw_redis_pushes=5000,
                   raw_encryptions=200, w1_events=200, w1_warmup=50, w1_employees=1000,
                   w1_extra_rules=200, w2_admins=1000, w2_clients=20, w3_clients=20,
                   w3_rate=50, w3_seconds=2, w4_rows=20_000, w4_users=500, w4_samples=200,
                   w5_mails=100, w5_apprise_mails=5, w5_pushes=50, w6_events=750,
                   w6_minutes=1.0, w6_warmup=250, w6_chunk=250, w7_timers=2000,
                   w7_seconds=5.0, w7_rate=20.0, w7_clients=10, w7_baseline_seconds=3.0,
                   w8_seconds=3.0, w9_burst=2000, w9_rate=10.0, w9_clients=5,
                   w9_baseline_seconds=2.0, w9_cap_seconds=30.0, w9_bulk_clients=2)


# ---------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the final table."""

    workload: str  # "W1" ... "W9", "raw"
    figure: str  # what was measured, with its value
    target: str
    raw: str  # the raw limit it is compared with (same run), or "-"
    verdict: str  # meets | misses | info | crashed | skipped
    value: float | None = None
    unit: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(round(q * 100)) - 1]


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "loadavg_at_start": [round(x, 2) for x in load]}


# ---------------------------------------------------------------- PostgreSQL


@dataclass
class Schema:
    name: str
    url: str
    db: Database


def schema_url(name: str) -> str:
    """The schema's URL; connections name themselves after it (pg_stat_activity), so
    the CPU time of our PostgreSQL backends can be told from other people's."""
    return f"{PG_BASE}?options=-csearch_path%3D{name}&application_name={name}"


@contextmanager
def pg_schema(prefix: str = "bench", migrate: bool = True) -> Iterator[Schema]:
    """A fresh schema (migrated), dropped afterwards whatever happens."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = Database(PG_BASE)
    with admin.engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    db = Database(schema_url(name))
    try:
        if migrate:
            db.migrate()
        yield Schema(name, schema_url(name), db)
    finally:
        db.dispose()
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()


def flush_redis() -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()


# ---------------------------------------------------------------- deployments


class Deployment(Herald):
    """`herald serve` / `herald worker` subprocesses on a bench schema and Redis DB 15.

    Same interface as tests.harness.Herald (bench/live_bench.py uses it), but the
    database URL is the bench schema's, the Redis DB is the bench's own, and
    start-up waits longer (the machine is shared and often busy)."""

    def __init__(self, tmp: Path, database_url: str, **config: Any) -> None:  # noqa: D107
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_db = REDIS_DB
        self._db_lock = None  # the bench's own DB, not one of the tests'
        self.config = {
            "database_url": database_url,
            "broker_url": REDIS_URL,
            "rules_path": str(ROOT / "rules"),
            "public_url": self.url,
            "log_format": "json",
            "log_level": os.environ.get("HERALD_BENCH_LOG_LEVEL", "WARNING"),
            "smtp": {"port": 1},
            "delivery": dict(NO_SWEEP),
            "api": {"publish_rate_per_s": 1_000_000, "publish_burst": 1_000_000,
                    "max_ws_per_user": 10},
            "outbound": {"allow": ["127.0.0.1"]},  # the local push service of W5
        }
        _merge(self.config, config)
        self.config_file = tmp / f"herald-{self.port}.yaml"
        self.config_file.write_text(yaml.safe_dump(self.config))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # a fresh bench schema: the first process deploys the files at rules_path as version 1
        self.own_rules = self.rules_deployed = False
        flush_redis()

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env["PYTHONPATH"] = str(ROOT)
        return env

    def start_api(self, name: str = "api", timeout: float = 120) -> None:  # type: ignore[override]
        self._spawn(name, "serve", "--port", str(self.port))
        self._wait(name, self._healthy, timeout)

    def start_replica(self, name: str, timeout: float = 120) -> str:
        port = free_port()
        self._spawn(name, "serve", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        self._wait(name, lambda: healthy(url), timeout)
        return url

    def start_worker(self, name: str = "worker", threads: int = 8,  # type: ignore[override]
                     queues: list[str] | None = None, timeout: float = 120
                     ) -> subprocess.Popen[bytes]:
        args = ["worker", "--threads", str(threads)]
        if queues:
            args += ["--queues", ",".join(queues)]
        proc = self._spawn(name, *args)
        self._wait(name, lambda: b"running" in (self.tmp / f"{name}.log").read_bytes(),
                   timeout)
        return proc

    def _wait(self, name: str, check: Any, timeout: float) -> None:
        def up() -> bool:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n"
                                   f"{self.log(name)[-3000:]}")
            return bool(check())

        try:
            wait_until(up, timeout, 0.2, what=f"{name} to start")
        except AssertionError:
            raise RuntimeError(f"{name} did not start in {timeout:.0f}s:\n"
                               f"{self.log(name)[-3000:]}") from None

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU seconds of each process so far (Linux /proc)."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for name, proc in self.procs.items():
            try:
                stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            used[name] = (int(stat[11]) + int(stat[12])) / ticks
        return used

    def stop(self) -> None:
        super().stop()
        flush_redis()


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def rss_bytes(pid: int) -> int:
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return float(sum(fields) - idle), float(sum(fields))


def busy_share(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Share of the machine's CPU time that was busy between two machine_cpu() calls."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def pg_backend_cpu(schema: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected for this schema."""
    import psycopg

    ticks = os.sysconf("SC_CLK_TCK")
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (schema,))]
    used = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, PermissionError):
            continue
        used += (int(stat[11]) + int(stat[12])) / ticks
    return used


def cpu_delta(before: dict[str, float], after: dict[str, float], per: int
              ) -> dict[str, float]:
    """CPU milliseconds per unit of work, by process."""
    return {name: round((after[name] - before.get(name, 0.0)) * 1000 / max(per, 1), 3)
            for name in after}


@contextmanager
def tmpdir(prefix: str) -> Iterator[Path]:
    """A scratch directory for a workload (configs, process logs); removed afterwards
    unless HERALD_BENCH_KEEP=1, which keeps it and says where."""
    if os.environ.get("HERALD_BENCH_KEEP") == "1":
        path = Path(tempfile.mkdtemp(prefix=f"herald-{prefix}-"))
        progress(f"  keeping {path} (HERALD_BENCH_KEEP=1)")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"herald-{prefix}-") as tmp:
        yield Path(tmp)


@contextmanager
def profiled(enabled_dir: str | None, name: str, pid: int, seconds: float | None = None
             ) -> Iterator[None]:
    """Optionally attach py-spy (raw collapsed stacks) to a process for the block."""
    if not enabled_dir:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    out = Path(enabled_dir) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(spy), "record", "--pid", str(pid), "--format", "raw", "-o", str(out),
           "--rate", "200", "--nonblocking", *os.environ.get("HERALD_BENCH_PYSPY", "").split()]
    if seconds:
        cmd += ["--duration", str(int(seconds))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        yield
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes what it has
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        progress(f"  py-spy profile of {name}: {out}")
