"""Single publishes that arrive together are stored in one transaction (group commit,
router.api.publisher), and nothing a user sees changes: each POST is answered after its
event is committed, a republished id answers what is stored, and one request's failure
is its own. A `herald serve` and a `herald worker` on a schema of their own: a trigger
makes the database refuse one event id, and a table lock holds a transaction open while
the next requests queue behind it."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

from router.core.enums import EventStatus
from router.store import models as m
from router.store.db import Database
from tests.conftest import own_schema
from tests.harness import Client, Herald, wait_until
from tests.pipeline.test_service_e2e import seed_directory, ticket

pytestmark = pytest.mark.slow

POISON = """
CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
BEGIN
  IF NEW.event_id LIKE 'poison%' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


@pytest.fixture
def deployment(tmp_path):
    with own_schema() as url:
        herald = Herald(tmp_path, database_url=url, smtp={"port": 1})
        created = herald.cli("tenants", "create", "Group Co", "--id", "group-co")
        key = next(line.split()[2] for line in created.stdout.splitlines()
                   if line.startswith("API key"))
        db = Database(url)
        with db.engine.begin() as conn:
            conn.execute(text(POISON))
        herald.start_api()
        try:
            with Client(herald.url, key) as client:
                seed_directory(client)
                yield herald, key, db
        finally:
            herald.stop()
            db.dispose()


def group_sizes(client: Client) -> dict[str, float]:
    """herald_publish_group_events: bucket (events) -> transactions up to that size."""
    found = re.findall(r'herald_publish_group_events_bucket\{le="([^"]+)"\} ([0-9.e+]+)',
                       client.get("/metrics").text)
    return {le: float(n) for le, n in found}


def stored(db: Database, prefix: str) -> dict[str, int]:
    with db.session() as s:
        return dict(s.execute(select(m.EventRow.event_id, func.count()).where(
            m.EventRow.tenant_id == "group-co", m.EventRow.event_id.like(f"{prefix}%")
        ).group_by(m.EventRow.event_id)).all())


def publish_behind_a_lock(herald: Herald, key: str, db: Database, ids: list[str]
                          ) -> dict[str, tuple[int, dict]]:
    """POST ids[0], and the others while its transaction waits on a lock of the events
    table; nothing may be answered before the lock goes and its event is committed."""
    answers: dict[str, tuple[int, dict]] = {}

    def post(event_id: str) -> None:
        with Client(herald.url, key) as client:
            response = client.post("/v1/events", json=ticket(event_id))
            answers[event_id] = (response.status_code, response.json())

    threads = [threading.Thread(target=post, args=(event_id,)) for event_id in ids]
    with db.engine.connect() as locker:
        locker.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))  # INSERTs wait
        threads[0].start()
        time.sleep(0.5)  # ids[0] holds the publisher's transaction, waiting on the lock
        for thread in threads[1:]:
            thread.start()
        time.sleep(1.0)  # the rest are queued for the next group
        assert answers == {}, "nothing may be answered before it is committed"
        locker.rollback()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_requests_queued_behind_an_open_transaction_share_the_next_one(deployment):
    herald, key, db = deployment
    ids = ["first", *[f"queued-{i}" for i in range(9)]]
    answers = publish_behind_a_lock(herald, key, db, ids)

    assert all(answers[i][0] == 202 and answers[i][1]["duplicate"] is False for i in ids), answers
    assert stored(db, "") == dict.fromkeys(ids, 1)
    with Client(herald.url, key) as client:
        sizes = group_sizes(client)
    # "first" alone, then the nine queued behind it in one transaction
    assert sizes["1.0"] == 1 and sizes["5.0"] == 1 and sizes["10.0"] == 2, sizes


def test_a_request_the_database_refuses_fails_alone_in_its_group(deployment):
    herald, key, db = deployment
    ids = ["lead", "ok-1", "ok-2", "poison-1", "ok-3", "ok-4"]
    answers = publish_behind_a_lock(herald, key, db, ids)

    assert answers["poison-1"][0] == 500, answers["poison-1"]
    assert {i: answers[i][0] for i in ids if i != "poison-1"} == dict.fromkeys(
        [i for i in ids if i != "poison-1"], 202)
    assert stored(db, "") == {i: 1 for i in ids if i != "poison-1"}


def test_concurrent_publishes_of_the_same_ids_store_each_once_and_answer_one_as_new(
        deployment):
    herald, key, db = deployment
    ids = [f"race-{i}" for i in range(60)]

    def post(event_id: str) -> tuple[str, int, bool]:
        with Client(herald.url, key) as client:
            response = client.post("/v1/events", json=ticket(event_id))
            return event_id, response.status_code, response.json()["duplicate"]

    with ThreadPoolExecutor(8) as pool:  # every id twice, from different threads at once
        results = list(pool.map(post, [i for i in ids for _ in range(2)]))

    assert {status for _, status, _ in results} == {202}
    for event_id in ids:
        duplicates = sorted(dup for i, _, dup in results if i == event_id)
        assert duplicates == [False, True], (event_id, duplicates)
    assert stored(db, "race-") == dict.fromkeys(ids, 1)

    herald.start_worker()  # and each is routed once: the feed holds one item per receiver
    wait_until(lambda: routed(db) == len(ids), 60, 0.2, what="every event routed")


def routed(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(m.EventRow).where(
            m.EventRow.tenant_id == "group-co", m.EventRow.status == EventStatus.ROUTED)) or 0
