"""Live fan-out latency: publish over HTTP -> item frame on a receiver's websocket.

    .venv/bin/python -m bench.live_bench [--rate 200] [--seconds 10] [--clients 50]
                                         [--replicas 2] [--worker-threads 8]

Starts a Redis-backed deployment with bench/common.py's Deployment (REPLICAS
`herald serve` processes and one `herald worker`, Redis DB 15) on a schema of its
own in the test database,
connects CLIENTS users' websockets spread over the replicas, then publishes
RATE events per second for SECONDS seconds, each to one user picked in turn, and
times every event from just before its POST to the arrival of its item frame.
Events are paced on a fixed schedule (no coordinated omission: a slow POST does
not delay the next one). Prints p50/p90/p99/max and what was lost, if anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.common import Deployment, Schema, pg_schema
from router.core.security import mint_user_token
from router.directory import tenants

DRAIN_S = 15.0
IN_FLIGHT = 64  # POSTs open at once (connections to the API)


@dataclass
class Run:
    sent: dict[str, float] = field(default_factory=dict)  # subject id -> send time
    received: dict[str, float] = field(default_factory=dict)
    post_ms: list[float] = field(default_factory=list)  # how long each POST took
    failed_posts: int = 0


@contextmanager
def schema() -> Iterator[Schema]:
    """A bench schema of its own (created, migrated, dropped after)."""
    with pg_schema("bench_live") as created:
        yield created


def start(herald: Deployment, replicas: int, threads: int) -> list[str]:
    herald.start_api("api-1")
    urls = [herald.url]
    for n in range(2, replicas + 1):
        urls.append(herald.start_replica(f"api-{n}"))
    herald.start_worker(threads=threads)
    return urls


def cpu_seconds(herald: Deployment) -> dict[str, float]:
    """User + system CPU time of each Herald process so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, proc in herald.procs.items():
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        used[name] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def seed(url: str, key: str, clients: int) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        lines = [json.dumps({"type": "user", "data": {"id": f"u{i}", "name": f"User {i}"}})
                 for i in range(clients)]
        lines.append(json.dumps({"type": "user", "data": {"id": "actor", "name": "Max"}}))
        response = http.post("/v1/directory:import", content="\n".join(lines),
                             headers={"Content-Type": "application/x-ndjson"})
        response.raise_for_status()


def event(n: int, receiver: str) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "type": "ticket.created",
            "actor": {"id": "actor", "name": "Max Muster"},
            "subject": {"kind": "ticket", "id": f"B-{n}", "number": f"#{n}",
                        "creator_id": receiver},
            "data": {"title": "Benchmark"}}


async def listen(ws: ClientConnection, run: Run) -> None:
    async for raw in ws:
        arrived = time.perf_counter()
        message = json.loads(raw)
        if message.get("type") == "item":
            run.received.setdefault(message["item"]["subject"]["id"], arrived)


async def publish(url: str, key: str, rate: float, seconds: float, clients: int,
                  run: Run, first: int = 0,
                  stop: Callable[[int, float], bool] | None = None) -> float:
    """POST events at `rate` on a fixed schedule for `seconds` (or until `stop(n, elapsed)`
    says so); returns the seconds it POSTed for."""
    total = int(rate * seconds)
    done = stop or (lambda n, _elapsed: n >= total)
    # POSTs beyond IN_FLIGHT wait on a semaphore, not in the client's pool. aiohttp, not
    # httpx: an httpx POST cost the load generator ~1 ms of CPU, on the cores the server
    # under test needed (W3 ran with the machine 96% busy)
    slots = asyncio.Semaphore(IN_FLIGHT)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(
            base_url=url, headers=headers, timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as http:
        async def post(n: int) -> None:
            doc = event(first + n, f"u{n % clients}")
            body = json.dumps(doc)
            run.sent[doc["subject"]["id"]] = sent = time.perf_counter()  # the schedule's time
            try:
                async with slots, http.post("/v1/events", data=body) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError):
                run.failed_posts += 1
                return
            run.post_ms.append((time.perf_counter() - sent) * 1000)
            if status != 202:
                run.failed_posts += 1

        posts = []
        started = time.perf_counter()
        n = 0
        while not done(n, time.perf_counter() - started):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(post(n)))
            n += 1
        await asyncio.gather(*posts)
        return time.perf_counter() - started


async def watch(urls: list[str], tokens: list[str], run: Run,
                posting: Callable[[], Awaitable[float]],
                on_open: Callable[[], None] | None = None) -> float:
    """One websocket per token (spread over the replicas) listening while `posting` runs,
    then until every event sent arrived or DRAIN_S passed; returns posting's seconds."""
    sockets = []
    for i, token in enumerate(tokens):
        base = urls[i % len(urls)].replace("http://", "ws://")
        ws = await connect(f"{base}/v1/me/stream?token={token}")
        assert json.loads(await ws.recv())["type"] == "hello"
        sockets.append(ws)
    readers = [asyncio.create_task(listen(ws, run)) for ws in sockets]
    try:
        if on_open is not None:
            on_open()
        elapsed = await posting()
        deadline = time.perf_counter() + DRAIN_S
        while len(run.received) < len(run.sent) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
    finally:
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
    return elapsed


async def measure(urls: list[str], key: str, tokens: list[str], args: argparse.Namespace
                  ) -> tuple[Run, float]:
    run = Run()

    def opened() -> None:
        print(f"==> {len(tokens)} websockets open over {len(urls)} replica(s); publishing "
              f"{args.rate:g}/s for {args.seconds:g} s", flush=True)

    elapsed = await watch(urls, tokens, run, lambda: publish(
        urls[0], key, args.rate, args.seconds, args.clients, run, getattr(args, "first", 0)),
        opened)
    return run, elapsed


def report(run: Run, elapsed: float, args: argparse.Namespace) -> None:
    latencies = sorted((run.received[s] - t) * 1000 for s, t in run.sent.items()
                       if s in run.received)
    lost = len(run.sent) - len(latencies)
    print(f"\nsent {len(run.sent):,} events in {elapsed:.1f} s "
          f"({len(run.sent) / elapsed:,.0f}/s achieved, {args.rate:g}/s asked); "
          f"received {len(latencies):,}; lost {lost}; failed POSTs {run.failed_posts}")
    if len(latencies) < 2:
        return
    print(f"{'':<24}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, values in (("publish -> websocket", latencies), ("POST /v1/events", run.post_ms)):
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        print(f"{label:<24}{statistics.median(values):>9.1f}{cuts[89]:>9.1f}{cuts[98]:>9.1f}"
              f"{max(values):>9.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50, help="connected users")
    parser.add_argument("--replicas", type=int, default=2, help="`herald serve` processes")
    parser.add_argument("--worker-threads", type=int, default=8)
    args = parser.parse_args(argv)
    with schema() as created_schema, tempfile.TemporaryDirectory() as tmp:
        db = created_schema.db
        herald = Deployment(Path(tmp), created_schema.url, smtp={"port": 1},
                            api={"max_ws_per_user": 10})
        try:
            print(f"==> starting {args.replicas} API replica(s) and a worker", flush=True)
            urls = start(herald, args.replicas, args.worker_threads)
            with db.session() as s:
                created = tenants.create(s, "Bench", tenant_id=f"bench-{uuid.uuid4().hex[:6]}")
            seed(urls[0], created.api_key, args.clients)
            tokens = [mint_user_token(created.signing_secret, created.tenant_id, f"u{i}",
                                      timedelta(hours=1)) for i in range(args.clients)]
            before = {**cpu_seconds(herald), "bench client": time.process_time()}
            run, elapsed = asyncio.run(measure(urls, created.api_key, tokens, args))
            after = {**cpu_seconds(herald), "bench client": time.process_time()}
        finally:
            herald.stop()
    report(run, elapsed, args)
    events = max(1, len(run.sent))
    print("CPU per event: " + ", ".join(
        f"{name} {(after[name] - before[name]) * 1000 / events:.1f} ms" for name in after))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
