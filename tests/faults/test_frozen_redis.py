"""A frozen Redis (SIGSTOP: connections accepted, nothing answered) must not stall
publishing: the database commit is the acceptance, and events left `received` are
enqueued by the sweeper once Redis answers again. Runs its own redis-server."""

from __future__ import annotations

import signal
import statistics
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import func, select

from router.store import models as m
from tests.faults.conftest import record
from tests.harness import Client, Herald, free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: _answers(url), 10, what="private redis-server")
    yield url, proc
    proc.send_signal(signal.SIGCONT)
    proc.terminate()
    proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def feed_items(pg, tenant_id: str) -> int:
    with pg.session() as s:
        return s.scalar(select(func.count()).select_from(m.FeedItem)
                        .where(m.FeedItem.tenant_id == tenant_id)) or 0


def code_paired(event_id: str) -> dict:
    return {"id": event_id, "type": "code.paired",
            "subject": {"kind": "code", "id": f"QR-{event_id}", "number": event_id}}


def test_publishing_answers_within_a_second_while_redis_is_frozen_and_the_events_route_after(
        tmp_path, pg, new_tenant_key, private_redis):
    url, redis_proc = private_redis
    herald = Herald(tmp_path, smtp={"port": 1}, broker_url=url, redis_url=url)
    tenant_id, key, _ = new_tenant_key()
    try:
        herald.start_api()
        herald.start_worker()
        with Client(herald.url, key) as client:
            assert client.put("/v1/users/a", json={"id": "a", "roles": ["admin"]}).status_code == 204
            assert client.post("/v1/events", json=code_paired("warm")).status_code == 202
            wait_until(lambda: feed_items(pg, tenant_id) == 1, 20, what="the warm-up event routed")

            redis_proc.send_signal(signal.SIGSTOP)
            latencies = []
            for i in range(20):
                started = time.perf_counter()
                answer = client.post("/v1/events", json=code_paired(f"f{i}"))
                latencies.append(time.perf_counter() - started)
                assert answer.status_code == 202, answer.text
            redis_proc.send_signal(signal.SIGCONT)

            thawed = time.perf_counter()
            wait_until(lambda: feed_items(pg, tenant_id) == 21, 60, 0.2,
                       what="all 20 events routed after Redis thawed")
            record("publish_with_frozen_redis",
                   p50_ms=round(statistics.median(latencies) * 1000, 1),
                   p100_ms=round(max(latencies) * 1000, 1),
                   routed_after_thaw_s=round(time.perf_counter() - thawed, 1))
            assert max(latencies) < 1.0
            api_log = herald.log("api")
            assert "limits.redis_unavailable" in api_log  # the limiter let them through
            assert "publish.enqueue_failed" in api_log  # and the sweeper enqueued them
    finally:
        redis_proc.send_signal(signal.SIGCONT)
        herald.stop()
