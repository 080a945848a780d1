"""W3 live latency: 200 events/s sustained for 30 s with 500 connected websocket
clients; publish -> websocket received, p50 and p99.

Reuses bench/live_bench.py: one `herald serve` (``--w3-replicas`` for more) and one
`herald worker` (8 threads) on a bench schema; CLIENTS users seeded through the
directory import, each with one websocket; events (`ticket.created` whose creator is
one of the clients, in turn) POSTed one by one on a fixed schedule (no coordinated
omission: a slow POST does not delay the next); each event timed from just before
its POST to the arrival of its item frame. A 3-second warm-up at the same rate runs
first and is not counted.
"""

from __future__ import annotations

import asyncio
import time
from argparse import Namespace
from datetime import timedelta
from typing import Any

from bench import live_bench
from bench.common import (
    Deployment,
    Row,
    Sizes,
    busy_share,
    cpu_delta,
    machine_cpu,
    pg_backend_cpu,
    pg_schema,
    profiled,
    progress,
    quantile,
    tmpdir,
    verdict,
)
from router.core.security import mint_user_token
from router.directory import tenants

P50_MS, P99_MS = 20.0, 100.0


def run(sizes: Sizes, raw: dict[str, Any], profile_dir: str | None = None,
        peers: bool = True) -> list[Row]:
    args = Namespace(rate=sizes.w3_rate, seconds=sizes.w3_seconds,
                           clients=sizes.w3_clients, replicas=sizes.w3_replicas,
                           worker_threads=8, first=0)
    warm = Namespace(**{**vars(args), "seconds": 1.0 if sizes.smoke else 3.0,
                              "first": 10_000_000})
    with pg_schema("bench_w3") as schema, tmpdir("w3") as tmp:
        dep = Deployment(tmp, schema.url)
        try:
            urls = live_bench.start(dep, args.replicas, args.worker_threads)
            with schema.db.session() as s:
                created = tenants.create(s, "Bench W3", tenant_id="bench")
            live_bench.seed(urls[0], created.api_key, args.clients)
            tokens = [mint_user_token(created.signing_secret, created.tenant_id, f"u{i}",
                                      timedelta(hours=1)) for i in range(args.clients)]
            progress(f"W3: warm-up {warm.seconds:g} s at {args.rate:g} events/s")
            asyncio.run(live_bench.measure(urls, created.api_key, tokens, warm))
            before = (dep.cpu_seconds(), pg_backend_cpu(schema.name), machine_cpu())
            generator = time.process_time()  # this process is the load generator
            with profiled(profile_dir, "w3-api", dep.pid("api-1")), \
                    profiled(profile_dir, "w3-worker", dep.pid("worker")):
                result, elapsed = asyncio.run(
                    live_bench.measure(urls, created.api_key, tokens, args))
            generator = time.process_time() - generator
            after = (dep.cpu_seconds(), pg_backend_cpu(schema.name), machine_cpu())
        finally:
            dep.stop()
    sent = len(result.sent)
    lat = sorted((result.received[k] - t) * 1000 for k, t in result.sent.items()
                 if k in result.received)
    lost = sent - len(lat)
    p50, p99 = quantile(lat, 0.5), quantile(lat, 0.99)
    cpu = cpu_delta(before[0], after[0], sent)
    cpu["postgres"] = round((after[1] - before[1]) * 1000 / max(sent, 1), 3)
    details = {"sent": sent, "received": len(lat), "lost": lost,
               "failed_posts": result.failed_posts, "seconds": round(elapsed, 2),
               "achieved_rate": round(sent / elapsed, 1), "clients": args.clients,
               "replicas": args.replicas, "latency_ms": {
                   "p50": round(p50, 1), "p90": round(quantile(lat, 0.9), 1),
                   "p99": round(p99, 1), "max": round(max(lat), 1) if lat else None},
               "post_ms": {"p50": round(quantile(result.post_ms, 0.5), 1),
                           "p99": round(quantile(result.post_ms, 0.99), 1)},
               "cpu_ms_per_event": cpu,
               # the POSTs and the 500 websockets, measured apart from Herald's processes
               "load_generator": {"cpu_ms_per_event": round(generator * 1000 / max(sent, 1), 3),
                                  "cpu_share_of_one_core": round(generator / elapsed, 3)},
               "machine_busy": round(busy_share(before[2], after[2]), 3)}
    progress(f"W3: {sent:,} events in {elapsed:.1f} s ({sent / elapsed:,.0f}/s), lost {lost}; "
             f"publish -> websocket p50 {p50:.1f} ms, p99 {p99:.1f} ms; POST p50 "
             f"{details['post_ms']['p50']} ms; CPU ms/event {cpu}; load generator "
             f"{generator / elapsed:.0%} of a core")
    ok = lost == 0 and result.failed_posts == 0
    suffix = "" if ok else f" ({lost} lost, {result.failed_posts} failed POSTs)"
    return [
        Row("W3", f"live p50: {p50:.1f} ms at {sent / elapsed:,.0f} ev/s, "
                  f"{args.clients} clients{suffix}",
            f"≤ {P50_MS:g} ms at {args.rate:g} ev/s", "-", verdict(ok and p50 <= P50_MS),
            p50, "ms", details),
        Row("W3", f"live p99: {p99:.1f} ms", f"≤ {P99_MS:g} ms", "-",
            verdict(ok and p99 <= P99_MS), p99, "ms", {}),
    ]
