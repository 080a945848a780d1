"""W8 quiet when idle (#17 goal 6): an idle `herald serve` and an idle `herald worker`,
each measured for CPU (share of one core) and Redis commands per second.

The deployment talks to a redis-server of its own (a free port, no persistence), so the
server's command counter counts Herald's commands only, whatever else runs on the
machine; PostgreSQL is the shared one, in a schema of its own. After a settling pause
(start-up, the first sweep), the two processes are watched for ``w8_seconds``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from bench.common import Deployment, Row, Sizes, pg_schema, progress, tmpdir, verdict
from tests.harness import free_port

CPU_GOAL = 0.005  # of one core, per process
REDIS_GOAL = 20.0  # commands per second, per process


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> PrivateRedis:
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1",
                        "--port", str(self.port), "--save", "", "--appendonly", "no",
                        "--dir", str(self.folder), "--pidfile", str(self.folder / "r.pid")],
                       check=True, capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def commands(self) -> int:
        return int(self.client().info("stats")["total_commands_processed"])

    def __exit__(self, *_exc: Any) -> None:
        try:
            self.client().shutdown(nosave=True)
        except redis.RedisError:
            pass  # shutdown closes the connection under us


def run(sizes: Sizes, raw: dict[str, Any]) -> list[Row]:
    if shutil.which("redis-server") is None:
        return [Row("W8", "idle: skipped", "redis-server not on PATH", "-", "skipped")]
    settle = 2.0 if sizes.smoke else 8.0
    with pg_schema("bench_w8") as schema, tmpdir("w8") as tmp, PrivateRedis(tmp) as red:
        dep = Deployment(tmp, schema.url, broker_url=red.url, redis_url=red.url)
        try:
            dep.start_api()
            dep.start_worker(threads=8)
            progress(f"W8: idle serve + worker, settling {settle:g} s, then "
                     f"{sizes.w8_seconds:g} s watched")
            time.sleep(settle)
            cpu0, cmds0, t0 = dep.cpu_seconds(), red.commands(), time.monotonic()
            time.sleep(sizes.w8_seconds)
            cpu1, cmds1, t1 = dep.cpu_seconds(), red.commands(), time.monotonic()
        finally:
            dep.stop()
    seconds = t1 - t0
    share = {name: (cpu1[name] - cpu0.get(name, 0.0)) / seconds for name in cpu1}
    per_s = (cmds1 - cmds0 - 1) / seconds  # less this bench's own INFO
    details = {"seconds": round(seconds, 1), "cpu_share": {k: round(v, 4) for k, v in share.items()},
               "redis_commands_per_s": round(per_s, 1), "processes": sorted(share),
               "cores": os.cpu_count()}
    worst = max(share.values()) if share else 0.0
    return [
        Row("W8", f"idle CPU: api {share.get('api', 0) * 100:.2f}%, worker "
            f"{share.get('worker', 0) * 100:.2f}% of a core", "each ≤ 0.5% of a core", "-",
            verdict(worst <= CPU_GOAL), worst, "share", details),
        Row("W8", f"idle Redis: {per_s:.1f} commands/s (api + worker)",
            "≤ 20/s per process", "-", verdict(per_s <= REDIS_GOAL * len(share)), per_s,
            "commands/s", {}),
    ]
