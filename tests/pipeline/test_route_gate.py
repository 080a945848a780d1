"""Small publishes share a queued route job (workers.broker.RouteGate): a stream of
single-event publishes makes a few route jobs of many events, and loses none. API and
`herald worker` subprocesses on the real PostgreSQL and Redis, with the lost-event pass
and the sweep put off for an hour, so that neither can route an event the gate stranded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from sqlalchemy import func, select

from router.core.enums import EventStatus
from router.store import models as m
from tests.harness import Client, Herald, wait_until
from tests.pipeline.test_service_e2e import seed_directory, ticket

pytestmark = pytest.mark.slow

RECEIVERS = 4  # of each ticket.created below: sup1, dep1, creator, cust2


@pytest.fixture
def herald(tmp_path):
    herald = Herald(tmp_path, smtp={"port": 1}, delivery={"lost_after_s": 3600,
                                                               "sweep_after_s": 3600})
    herald.start_api()
    yield herald
    herald.stop()


def counts(pg, tenant: str) -> tuple[int, int]:
    """(events routed, feed items) of the tenant."""
    with pg.session() as s:
        routed = s.scalar(select(func.count()).select_from(m.EventRow).where(
            m.EventRow.tenant_id == tenant, m.EventRow.status == EventStatus.ROUTED))
        items = s.scalar(select(func.count()).select_from(m.FeedItem).where(
            m.FeedItem.tenant_id == tenant))
    return routed or 0, items or 0


def route_jobs_queued(herald: Herald) -> int:
    with redis.Redis.from_url(herald.config["broker_url"]) as client:
        return int(client.llen("dramatiq:herald.route"))


def test_single_publishes_queued_before_a_worker_runs_make_one_job_and_all_are_routed(
        herald, new_tenant_key, pg):
    tenant, key, _ = new_tenant_key("Stream")
    with Client(herald.url, key) as client:
        seed_directory(client)
        for i in range(250):  # more than one route batch (100): the job asks for the next
            assert client.post("/v1/events", json=ticket(f"s-{i}", id=f"T-{i}")
                               ).status_code == 202
    assert route_jobs_queued(herald) == 1
    herald.start_worker()
    wait_until(lambda: counts(pg, tenant) == (250, 250 * RECEIVERS), 60, 0.2,
               what="every event routed, each receiver's item once")


def test_single_publishes_racing_a_running_worker_are_all_routed_once(
        herald, new_tenant_key, pg):
    tenant, key, _ = new_tenant_key("Racing")
    herald.start_worker(threads=4)
    with Client(herald.url, key) as setup:
        seed_directory(setup)

    def publish(lane: int) -> None:
        with Client(herald.url, key) as client:
            for i in range(100):
                assert client.post("/v1/events", json=ticket(f"r-{lane}-{i}", id=f"T-{lane}-{i}")
                                   ).status_code == 202

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(publish, range(4)))
    wait_until(lambda: counts(pg, tenant) == (400, 400 * RECEIVERS), 60, 0.2,
               what="every event routed, each receiver's item once")
    assert "route.batch_fallback" not in herald.log("worker")
