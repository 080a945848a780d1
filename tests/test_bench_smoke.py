"""`python -m bench --smoke` works end to end: every workload runs against the real
PostgreSQL and Redis with `herald` subprocesses and lands in the JSON results.

This checks that the benchmark command works, not what it measures: timed
assertions do not belong in the test suite (issue #8).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bench_smoke_runs_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "smoke"
    assert result["crashed"] == []
    ids = {row["workload"] for row in result["rows"]}
    assert {"raw", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9"} <= ids
    assert set(result["workloads"]) == {"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9"}
    assert all(result["workloads"][w] for w in result["workloads"])
    assert "verdict" in proc.stdout and "raw limit (same run)" in proc.stdout
