"""One event at a time through the router, in this process: what a single publish
costs below saturation (W3's latency floor), by stage and by SQL statement, and the CPU
of this process and of PostgreSQL's backends per routed event.

    python -m bench.route_latency [--events 200] [--employees 10000]

The W1 directory and rule set on a fresh PostgreSQL schema; every receiver counts as
online (live messages are built). Prints the route p50, the stage timings of
`route.batch`, and each statement's mean wait per event.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text

from bench.common import pg_backend_cpu, pg_schema, progress
from bench.routing_bench import build_rules, directory, events
from router.core.config import get_config
from router.routing.pipeline import EventRouter, publish
from router.routing.texts import TextCatalogue
from router.ruleset.engine import RuleEngine
from router.ruleset.rulefile import load_ruleset

WARM_UP = 20


def run(n_events: int, employees: int) -> dict[str, Any]:
    rules_dir = Path(tempfile.mkdtemp())
    try:
        engine = RuleEngine(load_ruleset(build_rules(rules_dir, 200)))
        with pg_schema("route_latency") as schema:
            progress(f"loading {employees:,} employees ...")
            directory(schema.db, "bench", employees)
            with schema.db.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
            event_router = EventRouter(engine, TextCatalogue(), get_config().links, batch=100)
            waits: collections.Counter[str] = collections.Counter()
            counts: collections.Counter[str] = collections.Counter()

            def before(conn: Any, *_: Any) -> None:
                conn.info["t0"] = time.perf_counter()

            def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                key = " ".join(statement.split()[:6])
                waits[key] += time.perf_counter() - conn.info["t0"]
                counts[key] += 1

            sa_event.listen(schema.db.engine, "before_cursor_execute", before)
            sa_event.listen(schema.db.engine, "after_cursor_execute", after)
            latencies: list[float] = []
            cpu: collections.Counter[str] = collections.Counter()
            stages: dict[str, list[float]] = collections.defaultdict(list)
            progress(f"routing {n_events} events one at a time ...")
            for i, e in enumerate(events("bench", n_events + WARM_UP)):
                with schema.db.session() as s:
                    pk = publish(s, "bench", [e])[0].pk
                if i == WARM_UP:
                    waits.clear()
                    counts.clear()
                pg0, cpu0 = pg_backend_cpu(schema.name), time.process_time()
                started = time.perf_counter()
                with schema.db.session() as s:
                    result = event_router.route(s, [pk])
                if i >= WARM_UP:
                    latencies.append((time.perf_counter() - started) * 1000)
                    cpu["client"] += time.process_time() - cpu0
                    cpu["postgres"] += pg_backend_cpu(schema.name) - pg0
                    for stage, ms in result.timings_ms.items():
                        stages[stage].append(ms)
    finally:
        shutil.rmtree(rules_dir)
    per_event = {k: (v / n_events * 1000, counts[k] / n_events) for k, v in waits.items()}
    return {"route_p50_ms": statistics.median(latencies),
            "stages_p50_ms": {k: statistics.median(v) for k, v in stages.items()},
            "cpu_ms_per_event": {k: v / n_events * 1000 for k, v in cpu.items()},
            "statements": per_event}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.route_latency", description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--employees", type=int, default=10_000)
    args = parser.parse_args()
    out = run(args.events, args.employees)
    # publish's INSERT shares the listener: keep only what route ran
    statements = {k: v for k, v in out["statements"].items() if not k.startswith("INSERT INTO events")}
    total = sum(n for _, n in statements.values())
    print(f"route p50 {out['route_p50_ms']:.1f} ms; {total:.0f} statements per event, "
          f"{sum(ms for ms, _ in statements.values()):.1f} ms waiting on PostgreSQL; CPU per "
          f"event: this process {out['cpu_ms_per_event']['client']:.1f} ms, PostgreSQL "
          f"{out['cpu_ms_per_event']['postgres']:.1f} ms")
    for stage, ms in out["stages_p50_ms"].items():
        print(f"  stage {stage:13s} {ms:6.2f} ms")
    for key, (ms, n) in sorted(statements.items(), key=lambda kv: -kv[1][0]):
        print(f"  {ms:6.2f} ms  x{n:.0f}  {key[:90]}")


if __name__ == "__main__":
    main()
