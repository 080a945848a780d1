"""`python -m bench`: every workload of issue #8 against real PostgreSQL and Redis
with `herald` subprocesses, next to the machine's raw limits measured in the same run.

    python -m bench                       # everything, full sizes (make bench)
    python -m bench --smoke               # tiny sizes, every workload end to end (< 90 s)
    python -m bench --only W1,W5          # some workloads (raw limits are always measured)
    python -m bench --w1-events 5000 ...  # size overrides (see --help)
    python -m bench --profile /tmp/prof   # py-spy raw profiles of the worker/API processes

Prints progress lines, then a table (workload, figure, target, raw limit measured in
this run, verdict), and writes it as JSON to bench/results/latest.json (or --out).
Exits non-zero when a workload crashed; a missed target is reported, not an error.
"""

from __future__ import annotations

import os
import tempfile

# The bench process imports router.core.metrics (prometheus multiprocess mode): keep its
# files out of the work tree. Must happen before any router import.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                      tempfile.mkdtemp(prefix="herald-bench-metrics-"))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from bench.common import ROOT, Row, Sizes, machine, progress  # noqa: E402

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9")
NAMES = {"W1": "routing", "W2": "fan-out", "W3": "live latency", "W4": "feed reads",
         "W5": "channels", "W6": "memory", "W7": "timers", "W8": "idle", "W9": "fairness"}
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes: checks that every workload runs, not what it measures")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W5")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results file")
    parser.add_argument("--profile", default="",
                        help="directory for py-spy raw profiles of the Herald processes")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip django-notifications-hq and apprise")
    for f in dataclasses.fields(Sizes):
        if f.name == "smoke":
            continue
        flag = "--" + f.name.replace("_", "-")
        kind: Any = {"int": int, "float": float, "bool": _bool}[str(f.type)]
        parser.add_argument(flag, type=kind, default=None, help=f"(full: {f.default})")
    return parser.parse_args(argv)


def _bool(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def sizes_from(args: argparse.Namespace) -> Sizes:
    sizes = Sizes.for_mode(args.smoke)
    for f in dataclasses.fields(Sizes):
        value = getattr(args, f.name, None)
        if f.name != "smoke" and value is not None:
            setattr(sizes, f.name, value)
    if args.no_peers:
        sizes.w2_peer = False
    return sizes


def run_workload(wid: str, sizes: Sizes, raw: dict[str, Any], args: argparse.Namespace
                 ) -> list[Row]:
    from bench import (
        w1_routing,
        w2_fanout,
        w3_live,
        w4_feed,
        w5_channels,
        w6_memory,
        w7_timers,
        w8_idle,
        w9_fairness,
    )

    if wid == "W8":
        return w8_idle.run(sizes, raw)
    modules = {"W1": w1_routing, "W2": w2_fanout, "W3": w3_live, "W4": w4_feed,
               "W5": w5_channels, "W6": w6_memory, "W7": w7_timers, "W9": w9_fairness}
    rows: list[Row] = modules[wid].run(sizes, raw, profile_dir=args.profile or None,
                                       peers=not args.no_peers)
    return rows


def _service_lost(exc: BaseException) -> bool:
    import psycopg
    import redis
    import sqlalchemy.exc

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (redis.ConnectionError, psycopg.OperationalError,
                             sqlalchemy.exc.OperationalError)):
            return True
        if "Redis" in str(seen) and "restarted" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _wait_services(timeout: float = 120) -> None:
    import psycopg
    import redis

    from bench.common import PG_BASE, REDIS_URL

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            redis.Redis.from_url(REDIS_URL).ping()
            psycopg.connect(PG_BASE, connect_timeout=5).close()
            time.sleep(2)
            return
        except (redis.RedisError, psycopg.Error):
            time.sleep(1)


def table(rows: list[Row]) -> str:
    headers = ("workload", "figure", "target", "raw limit (same run)", "verdict")
    cells = [(r.workload, r.figure, r.target, r.raw, r.verdict) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    for c in cells:
        out.append(" | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    return "\n".join(out)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # so the workloads' finally blocks stop processes, drop schemas


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse(argv)
    sizes = sizes_from(args)
    wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    unknown = [w for w in wanted if w not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s): {', '.join(unknown)} (have {', '.join(WORKLOADS)})",
              file=sys.stderr)
        return 2
    mode = "smoke" if sizes.smoke else "full"
    started_at = datetime.now(UTC)
    progress(f"Herald benchmark ({mode}): {', '.join(wanted)}; machine {machine()}")
    from bench import raw as raw_limits

    rows: list[Row] = []
    crashed: list[str] = []
    timings: dict[str, float] = {}
    try:
        raw = raw_limits.measure(sizes)
        rows += raw_limits.rows(raw)
    except Exception:  # noqa: BLE001 - report the crash and stop: nothing to compare with
        traceback.print_exc()
        raw, crashed = {}, ["raw"]
    for wid in wanted if raw else []:
        progress(f"==> {wid} {NAMES[wid]}")
        t0 = time.perf_counter()
        try:
            try:
                rows += run_workload(wid, sizes, raw, args)
            except Exception as exc:  # noqa: BLE001 - retried once if a service went away
                if not _service_lost(exc):
                    raise
                traceback.print_exc()
                progress(f"{wid}: Redis or PostgreSQL went away during the run (restarted by "
                         "someone else?); waiting for them, then running it once more")
                _wait_services()
                rows += run_workload(wid, sizes, raw, args)
        except Exception as exc:  # noqa: BLE001 - one crashed workload must not hide the rest
            traceback.print_exc()
            crashed.append(wid)
            rows.append(Row(wid, f"{NAMES[wid]}: crashed ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:120] if str(exc) else ''})",
                            "-", "-", "crashed"))
        timings[wid] = round(time.perf_counter() - t0, 1)
        progress(f"<== {wid} done in {timings[wid]:.0f} s")
    print()
    print(table(rows))
    if sizes.smoke:
        print("\n(smoke sizes: the figures say the command works, not what Herald can do)")
    notes = [r.details["note"] for r in rows if r.details.get("note")]
    for note in notes:
        print(f"note: {note}")
    result = {
        "mode": mode, "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(), "machine": machine(),
        "sizes": dataclasses.asdict(sizes), "workloads_run": wanted, "seconds": timings,
        "crashed": crashed, "raw_limits": raw, "rows": [r.as_dict() for r in rows],
        "workloads": {w: [r.as_dict() for r in rows if r.workload == w] for w in wanted},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(out)
    progress(f"results written to {out}")
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
