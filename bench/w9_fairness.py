"""W9 fairness between tenants (#17 goal 5): a 20,000-event burst from one tenant does
not push another tenant's publish -> websocket p99 above 500 ms.

One `herald serve` and one `herald worker` (8 threads, every queue, as deployed) on a
bench schema, the shipped rules, two tenants:

* ``bulk``: 1,200 employees without email addresses (routing_bench.directory, emails
  then cleared: browser is their only channel, so the burst makes route work and live
  frames, not SMTP retries against the bench's closed port), the template ``tpl`` whose
  notification receivers are u0..u5; its events are W1's (``ticket.created`` /
  ``ticket.status_changed``, ~8 employee receivers each: the template's six, the
  creator, a participant). ``w9_bulk_clients`` of the template's receivers (u0, u1, ...)
  hold a websocket each, so every bulk event also makes that many browser deliveries.
* ``quiet``: ``w9_clients`` users seeded through the directory import, each with one
  websocket, the W3 live probe's tenant (bench/live_bench.py).

1. Warm-up (3 s, not counted), then the baseline: the live probe on ``quiet`` alone
   (``w9_rate`` ``ticket.created`` events/s POSTed one by one on a fixed schedule, no
   coordinated omission; each timed from just before its POST to its item frame) for
   ``w9_baseline_seconds``.
2. Burst: a child process (its own CPU, so the load generator does not slow the
   probe) holds the bulk tenant's websockets and POSTs ``w9_burst`` bulk events in
   batches of 1,000 (two requests in flight, as W1). The same live probe on ``quiet``
   starts with it and runs until every bulk event is routed (or failed), read from the
   database every 200 ms, or ``w9_cap_seconds`` have passed; then up to 15 s more for
   the last quiet frames (more missing are lost).

Reported: the quiet tenant's p50/p99 (and POST and publish -> routed times, the latter
from the events table, which tells queue waiting from API waiting) in both phases and
their ratio, events lost; how long the burst took to be accepted (last batch answered)
and routed (all bulk events routed), the bulk live frames received; CPU shares of the
Herald processes, PostgreSQL backends, the load generator (this process and the bulk
child) and the machine's busy share, the load average before and after.

Verdict: meets when the quiet tenant's p99 during the burst is ≤ 500 ms and nothing was
lost (no frame missing, no POST failed).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
from websockets.asyncio.client import ClientConnection, connect

from bench import live_bench
from bench import routing_bench as rb
from bench.common import (
    Deployment,
    Row,
    Sizes,
    busy_share,
    machine_cpu,
    pg_backend_cpu,
    pg_schema,
    profiled,
    progress,
    quantile,
    tmpdir,
    verdict,
)
from bench.w1_routing import docs, post_all
from router.core.config import ApiConfig
from router.core.security import mint_user_token
from router.directory import tenants

GOAL_P99_MS = 500.0
BULK, QUIET = "bulk", "quiet"
BULK_EMPLOYEES = 1200  # routing_bench.events names creators u100..u599, participants u900..u1199
BULK_PREFIX = "b"
POLL_S = 0.2
ROUTE_WAIT_S = 600.0  # after the probe: how long to still wait for the burst to be routed
WORKER_THREADS = 8

ROUTED = ("SELECT count(*) FROM events WHERE tenant_id = %s "
          "AND status IN ('routed', 'failed')")
LAGS = ("SELECT payload->'subject'->>'id', extract(epoch FROM routed_at - received_at) "
        "FROM events WHERE tenant_id = %s AND routed_at IS NOT NULL")


# ---------------------------------------------------------------- the live probe


@dataclass
class Stop:
    """When the probe stops POSTing: after `total` events, or when `flag` is set, or
    after `cap_s` seconds, whichever comes first."""

    total: int | None = None
    flag: threading.Event | None = None
    cap_s: float | None = None

    def __call__(self, n: int, elapsed: float) -> bool:
        return ((self.total is not None and n >= self.total)
                or (self.flag is not None and self.flag.is_set())
                or (self.cap_s is not None and elapsed >= self.cap_s))


async def _measure(url: str, key: str, tokens: list[str], rate: float, first: int,
                   stop: Callable[[int, float], bool], on_open: Callable[[], None] | None
                   ) -> tuple[live_bench.Run, float]:
    """live_bench's probe with an open end: POSTs at RATE until STOP says so."""
    run = live_bench.Run()
    elapsed = await live_bench.watch([url], tokens, run, lambda: live_bench.publish(
        url, key, rate, 0.0, len(tokens), run, first, stop), on_open)
    return run, elapsed


def probe(url: str, key: str, tokens: list[str], rate: float, first: int,
          stop: Callable[[int, float], bool], on_open: Callable[[], None] | None = None
          ) -> tuple[dict[str, Any], live_bench.Run]:
    """One live probe on the quiet tenant: its figures, this process's CPU share
    meanwhile, and the raw run (send and receive times by subject id)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run, elapsed = asyncio.run(_measure(url, key, tokens, rate, first, stop, on_open))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    lat = sorted((run.received[k] - t) * 1000 for k, t in run.sent.items() if k in run.received)
    return {"sent": len(run.sent), "received": len(lat), "lost": len(run.sent) - len(lat),
            "failed_posts": run.failed_posts, "seconds": round(elapsed, 2),
            "achieved_rate": round(len(run.sent) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(quantile(lat, 0.5), 1), "p90_ms": round(quantile(lat, 0.9), 1),
            "p99_ms": round(quantile(lat, 0.99), 1),
            "max_ms": round(max(lat), 1) if lat else None,
            "post_p50_ms": round(quantile(run.post_ms, 0.5), 1),
            "post_p99_ms": round(quantile(run.post_ms, 0.99), 1),
            "generator_cpu_share": round(cpu / wall, 3) if wall else 0.0}, run


# ---------------------------------------------------------------- the bulk tenant


def _bulk_child(conn: Connection, url: str, key: str, tokens: list[str], n: int) -> None:
    """The bulk tenant's load generator (a process of its own): opens its websockets,
    says "ready", waits for "go", POSTs N events in batches, says when they were
    accepted, counts item frames until "stop", then reports them and its CPU time since
    "go"."""
    import random

    random.seed(9)
    body = docs(BULK, n, BULK_PREFIX)
    frames = [0]
    last = [0.0]

    async def count(ws: ClientConnection) -> None:
        async for raw in ws:
            if '"item"' in (raw if isinstance(raw, str) else raw.decode()):
                frames[0] += 1
                last[0] = time.perf_counter()

    async def main() -> None:
        base = url.replace("http://", "ws://")
        sockets = [await connect(f"{base}/v1/me/stream?token={t}", max_queue=None)
                   for t in tokens]
        readers = [asyncio.create_task(count(ws)) for ws in sockets]
        conn.send(("ready",))
        assert await asyncio.to_thread(conn.recv) == "go"
        started, cpu0 = time.perf_counter(), time.process_time()
        try:
            accepted = await asyncio.to_thread(post_all, url, key, body)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:1000]))
        else:
            conn.send(("accepted", started, accepted))
        assert await asyncio.to_thread(conn.recv) == "stop"
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
        conn.send(("frames", frames[0], last[0], time.process_time() - cpu0))

    asyncio.run(main())


class BulkTenant:
    """The parent's handle on the bulk child process."""

    def __init__(self, url: str, key: str, tokens: list[str], n: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited threads, DB pools or loops
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_bulk_child, args=(child, url, key, tokens, n),
                                name="w9-bulk", daemon=True)
        self.proc.start()
        child.close()
        self.accepted: tuple[float, float] | None = None
        self.error = ""

    def _recv(self, timeout: float) -> tuple[Any, ...]:
        deadline = time.perf_counter() + timeout
        while not self.conn.poll(0.2):
            if not self.proc.is_alive():
                raise RuntimeError(f"the bulk load generator exited ({self.proc.exitcode})")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the bulk load generator said nothing for {timeout:.0f} s")
        message: tuple[Any, ...] = self.conn.recv()
        return message

    def ready(self, timeout: float = 120) -> None:
        assert self._recv(timeout)[0] == "ready"

    def go(self) -> None:
        self.conn.send("go")

    def poll_accepted(self) -> None:
        """Non-blocking: note the "accepted" (or "error") message once it came."""
        if self.accepted is None and not self.error and self.conn.poll():
            message = self.conn.recv()
            if message[0] == "accepted":
                self.accepted = (float(message[1]), float(message[2]))
            else:
                self.error = str(message[1])

    def wait_accepted(self, timeout: float) -> None:
        if self.accepted is None and not self.error:
            message = self._recv(timeout)
            if message[0] == "accepted":
                self.accepted = (float(message[1]), float(message[2]))
            else:
                self.error = str(message[1])
        if self.error:
            raise RuntimeError(f"bulk publish failed: {self.error}")

    def stop(self) -> tuple[int, float, float]:
        """(item frames received, when the last came, the child's CPU seconds since go)."""
        self.conn.send("stop")
        message = self._recv(60)
        assert message[0] == "frames"
        return int(message[1]), float(message[2]), float(message[3])

    def close(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(10)
        self.conn.close()


class RoutedWatch(threading.Thread):
    """Polls the events table until N events of TENANT are routed (or failed); sets
    `done` then, `done_at` being the perf_counter time it was seen."""

    def __init__(self, url: str, tenant: str, n: int) -> None:
        super().__init__(name="w9-routed-watch", daemon=True)
        self.url, self.tenant, self.n = url, tenant, n
        self.done = threading.Event()
        self.quit = threading.Event()
        self.done_at: float | None = None
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.quit.is_set():
                    row = conn.execute(ROUTED, (self.tenant,)).fetchone()
                    self.count = int(row[0]) if row else 0
                    if self.count >= self.n:
                        self.done_at = time.perf_counter()
                        self.done.set()
                        return
                    self.quit.wait(POLL_S)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            self.error = exc
            self.done.set()


# ---------------------------------------------------------------- the workload


def _cpu_of(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def _snapshot(dep: Deployment, schema: str) -> dict[str, Any]:
    return {"procs": dep.cpu_seconds(), "pg": pg_backend_cpu(schema), "box": machine_cpu(),
            "me": time.process_time(), "t": time.perf_counter(),
            "load": [round(x, 2) for x in os.getloadavg()]}


def _cpu_block(a: dict[str, Any], b: dict[str, Any], child_cpu: float | None = None
               ) -> dict[str, Any]:
    wall = b["t"] - a["t"]
    share = {name: round((b["procs"][name] - a["procs"].get(name, 0.0)) / wall, 3)
             for name in b["procs"]}
    share["postgres_backends"] = round((b["pg"] - a["pg"]) / wall, 3)
    share["load_generator"] = round((b["me"] - a["me"]) / wall, 3)
    if child_cpu is not None:
        share["bulk_load_generator"] = round(child_cpu / wall, 3)
    return {"seconds": round(wall, 1), "cpu_share_of_one_core": share,
            "machine_busy": round(busy_share(a["box"], b["box"]), 3),
            "loadavg_before": a["load"], "loadavg_after": b["load"]}


def _lags(url: str, run: live_bench.Run) -> dict[str, Any]:
    """Publish -> routed (events.received_at -> routed_at) of the probe's quiet events."""
    with psycopg.connect(url, autocommit=True) as conn:
        found = {str(r[0]): float(r[1]) * 1000 for r in conn.execute(LAGS, (QUIET,))}
    lag = sorted(found[k] for k in run.sent if k in found)
    return {"routed": len(lag), "p50_ms": round(quantile(lag, 0.5), 1),
            "p99_ms": round(quantile(lag, 0.99), 1),
            "max_ms": round(lag[-1], 1) if lag else None}


def _seed_bulk(schema: Any) -> tuple[str, str]:
    """The bulk tenant: W1's directory (without email addresses) and an API key."""
    with schema.db.session() as s:
        created = tenants.create(s, "Bench W9 bulk", tenant_id=BULK)
    rb.directory(schema.db, BULK, BULK_EMPLOYEES, create_tenant=False)
    with psycopg.connect(schema.url, autocommit=True) as conn:
        conn.execute("UPDATE users SET email = NULL WHERE tenant_id = %s", (BULK,))
    return created.signing_secret, created.api_key


def run(sizes: Sizes, raw: dict[str, Any], profile_dir: str | None = None,
        peers: bool = True) -> list[Row]:
    n, rate, clients = sizes.w9_burst, sizes.w9_rate, sizes.w9_clients
    warm_s = 1.0 if sizes.smoke else 3.0
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    with pg_schema("bench_w9") as schema, tmpdir("w9") as tmp:
        bulk_secret, bulk_key = _seed_bulk(schema)
        # the shipped per-tenant publish limits (the bench's other workloads lift them):
        # the rate limit is part of what keeps one tenant from taking the API
        shipped = ApiConfig()
        dep = Deployment(tmp, schema.url, api={"publish_rate_per_s": shipped.publish_rate_per_s,
                                                "publish_burst": shipped.publish_burst})
        bulk: BulkTenant | None = None
        watch: RoutedWatch | None = None
        try:
            dep.start_api()
            dep.start_worker(threads=WORKER_THREADS)
            with schema.db.session() as s:
                quiet = tenants.create(s, "Bench W9 quiet", tenant_id=QUIET)
            live_bench.seed(dep.url, quiet.api_key, clients)
            tokens = [mint_user_token(quiet.signing_secret, QUIET, f"u{i}", timedelta(hours=1))
                      for i in range(clients)]
            bulk_tokens = [mint_user_token(bulk_secret, BULK, f"u{i}", timedelta(hours=1))
                           for i in range(sizes.w9_bulk_clients)]
            progress(f"W9: API + worker up; tenants {BULK!r} ({BULK_EMPLOYEES:,} employees) "
                     f"and {QUIET!r} ({clients} users); warm-up {warm_s:g} s at {rate:g} ev/s")
            probe(dep.url, quiet.api_key, tokens, rate, 10_000_000,
                  Stop(total=max(1, int(rate * warm_s))))

            progress(f"W9: baseline: quiet tenant alone, {rate:g} ev/s, {clients} websockets, "
                     f"{sizes.w9_baseline_seconds:g} s")
            b0 = _snapshot(dep, schema.name)
            base, base_run = probe(dep.url, quiet.api_key, tokens, rate, 0,
                                   Stop(total=max(1, int(rate * sizes.w9_baseline_seconds))))
            b1 = _snapshot(dep, schema.name)
            progress(f"W9:   baseline p50 {base['p50_ms']} ms, p99 {base['p99_ms']} ms, "
                     f"lost {base['lost']}")

            progress(f"W9: starting the bulk load generator ({sizes.w9_bulk_clients} "
                     f"websockets, {n:,} events prepared)")
            bulk = BulkTenant(dep.url, bulk_key, bulk_tokens, n)
            bulk.ready()
            watch = RoutedWatch(schema.url, BULK, n)
            started: list[float] = []

            def go() -> None:  # once the quiet websockets are open: burst and probe together
                assert bulk is not None and watch is not None
                started.append(time.perf_counter())
                bulk.go()
                watch.start()

            progress(f"W9: burst: {n:,} bulk events (batches of 1,000) with the quiet probe "
                     f"beside them until they are routed (cap {sizes.w9_cap_seconds:g} s)")
            s0 = _snapshot(dep, schema.name)
            with profiled(profile_dir, "w9-worker", dep.pid("worker")):
                loaded, loaded_run = probe(dep.url, quiet.api_key, tokens, rate, 1_000_000,
                                           Stop(flag=watch.done, cap_s=sizes.w9_cap_seconds),
                                           on_open=go)
                s1 = _snapshot(dep, schema.name)
                bulk.poll_accepted()
                if not watch.done.is_set():
                    progress(f"W9:   probe capped at {sizes.w9_cap_seconds:g} s with "
                             f"{watch.count:,}/{n:,} bulk events routed; waiting for the rest")
                bulk.wait_accepted(ROUTE_WAIT_S)
                watch.done.wait(ROUTE_WAIT_S)
            if watch.error is not None:
                raise watch.error
            frames, last_frame, child_cpu = bulk.stop()
            s2 = _snapshot(dep, schema.name)
            lag_base, lag_loaded = _lags(schema.url, base_run), _lags(schema.url, loaded_run)
            with psycopg.connect(schema.url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE status = 'routed'), "
                    "count(*) FILTER (WHERE status = 'failed'), "
                    "extract(epoch FROM max(routed_at) - min(received_at)) "
                    "FROM events WHERE tenant_id = %s", (BULK,)).fetchone()
                assert row is not None
                feed_rows = conn.execute("SELECT count(*) FROM feed_items WHERE tenant_id = %s",
                                         (BULK,)).fetchone()
                assert feed_rows is not None
        finally:
            if watch is not None:
                watch.quit.set()
            if bulk is not None:
                bulk.close()
            dep.stop()
    go_at = started[0]
    accepted_s = bulk.accepted[1] - go_at if bulk.accepted else None
    routed_s = watch.done_at - go_at if watch.done_at is not None else None
    burst = {
        "events": n, "batch": 1000, "bulk_websockets": sizes.w9_bulk_clients,
        "accepted_s": round(accepted_s, 2) if accepted_s is not None else None,
        "routed_s": round(routed_s, 2) if routed_s is not None else None,
        "routed": int(row[0]), "failed": int(row[1]),
        "db_first_received_to_last_routed_s": round(float(row[2]), 2) if row[2] else None,
        "routed_per_s": round(n / routed_s, 1) if routed_s else None,
        "bulk_feed_items": int(feed_rows[0]),
        "bulk_live_frames": frames, "bulk_live_frames_expected": n * sizes.w9_bulk_clients,
        "last_bulk_frame_s": round(last_frame - go_at, 2) if last_frame else None,
    }
    return _rows(sizes, base, loaded, lag_base, lag_loaded, burst,
                 {"baseline": _cpu_block(b0, b1), "burst_probe": _cpu_block(s0, s1),
                  "burst_until_routed": _cpu_block(s0, s2, child_cpu)},
                 load_at_start)


def _rows(sizes: Sizes, base: dict[str, Any], loaded: dict[str, Any],
          lag_base: dict[str, Any], lag_loaded: dict[str, Any], burst: dict[str, Any],
          cpu: dict[str, Any], load_at_start: list[float]) -> list[Row]:
    p50, p99 = loaded["p50_ms"], loaded["p99_ms"]
    lost = loaded["lost"] + loaded["failed_posts"]
    ratio_p99 = p99 / base["p99_ms"] if base["p99_ms"] else float("nan")
    ratio_p50 = p50 / base["p50_ms"] if base["p50_ms"] else float("nan")
    gen_share = cpu["burst_until_routed"]["cpu_share_of_one_core"]
    details = {
        "tenants": {"bulk": f"{BULK_EMPLOYEES:,} employees, ~8 receivers per event, "
                            f"{sizes.w9_bulk_clients} websockets",
                    "quiet": f"{sizes.w9_clients} users, one websocket each"},
        "rate": sizes.w9_rate, "clients": sizes.w9_clients, "worker_threads": WORKER_THREADS,
        "baseline": base, "burst": loaded,
        "quiet_publish_to_routed_ms": {"baseline": lag_base, "burst": lag_loaded},
        "bulk": burst, "p99_ratio": round(ratio_p99, 2), "p50_ratio": round(ratio_p50, 2),
        "cpu": cpu, "loadavg_at_start": load_at_start,
        "machine_busy": cpu["burst_until_routed"]["machine_busy"],
        "load_generator_cpu_share": {
            "baseline": base["generator_cpu_share"], "burst_probe": loaded["generator_cpu_share"],
            "bulk_child": gen_share.get("bulk_load_generator")},
    }
    routed = (f"routed in {burst['routed_s']:.1f} s" if burst["routed_s"] is not None
              else "not all routed")
    accepted = (f"accepted in {burst['accepted_s']:.1f} s" if burst["accepted_s"] is not None
                else "not accepted")
    progress(f"W9: quiet tenant p99 {p99} ms during the burst vs {base['p99_ms']} ms alone "
             f"(×{ratio_p99:.1f}; p50 {p50} vs {base['p50_ms']}), lost {loaded['lost']}, "
             f"failed POSTs {loaded['failed_posts']}; publish -> routed p99 "
             f"{lag_loaded['p99_ms']} ms")
    progress(f"W9: burst of {burst['events']:,}: {accepted}, {routed}; bulk frames "
             f"{burst['bulk_live_frames']:,}/{burst['bulk_live_frames_expected']:,}; machine "
             f"{details['machine_busy']:.0%} busy, load {cpu['burst_until_routed']['loadavg_after']}")
    suffix = (f", {loaded['lost']} lost, {loaded['failed_posts']} failed POSTs" if lost else "")
    return [
        Row("W9", f"fairness: quiet tenant p99 {p99:.1f} ms during a {burst['events']:,}-event "
                  f"burst of another (×{ratio_p99:.1f} its {base['p99_ms']:.1f} ms alone){suffix}",
            f"p99 ≤ {GOAL_P99_MS:g} ms, 0 lost", "-",
            verdict(lost == 0 and p99 <= GOAL_P99_MS), p99, "ms", details),
        Row("W9", f"quiet tenant p50: {p50:.1f} ms during the burst vs {base['p50_ms']:.1f} ms "
                  f"alone; publish -> routed p99 {lag_loaded['p99_ms']:.1f} ms vs "
                  f"{lag_base['p99_ms']:.1f} ms", f"{sizes.w9_rate:g} ev/s, "
                  f"{sizes.w9_clients} sockets", "-", "info", p50, "ms",
            {"p50_ratio": round(ratio_p50, 2)}),
        Row("W9", f"burst: {burst['events']:,} events {accepted}, {routed}"
                  + (f" ({burst['routed_per_s']:,.0f}/s)" if burst["routed_per_s"] else ""),
            "-", "-", "info", burst["routed_s"], "s", {}),
        Row("W9", f"load generator CPU: probe {loaded['generator_cpu_share']:.0%}, bulk child "
                  f"{(gen_share.get('bulk_load_generator') or 0):.0%} of a core; machine "
                  f"{details['machine_busy']:.0%} busy", "-", "-", "info",
            loaded["generator_cpu_share"], "share", {}),
    ]
