"""Fault tolerance with real processes: API, `herald worker` subprocesses, Redis,
PostgreSQL and a real SMTP server. Every accepted event must end with every
delivery terminal; nothing lost, no duplicate feed items."""

from __future__ import annotations

import collections
import threading
import time

import httpx
import pytest
from sqlalchemy import func, select, text, update

from router.store import models as m
from tests.faults.conftest import record
from tests.harness import DELIVERY_ID, Client, Herald, own_mails, wait_until
from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.slow
STAFF = [f"e{i}" for i in range(4)]
@pytest.fixture
def sink():
    with SmtpSink() as server:
        yield server


@pytest.fixture
def deploy(tmp_path, pg, sink, private_redis):
    """A deployment on this test's own Redis; delivery settings on top of the fault ones."""
    started: list[Herald] = []

    def make(**delivery: object) -> Herald:
        started.append(Herald(tmp_path, redis_base=private_redis.url, smtp={"port": sink.port},
                              delivery={"max_attempts": 100, "backoff_max_s": 2, **delivery}))
        return started[-1]

    yield make
    for deployment in started:
        deployment.stop()


@pytest.fixture
def herald(deploy):
    return deploy()


@pytest.fixture
def tenant(herald, new_tenant_key):
    tenant_id, key, _ = new_tenant_key("Faulty")
    with Client(herald.url, key) as client:
        yield tenant_id, client


def seed(client: Client) -> None:
    for uid in STAFF:
        client.put(f"/v1/users/{uid}", json={"id": uid, "email": f"{uid}@acme.example",
                                             "roles": ["admin"]})


def code_event(i: int) -> dict:
    return {"id": f"ev-{i}", "type": "code.paired",
            "subject": {"kind": "code", "id": f"QR-{i}", "number": f"QR-{i}"}}


def counts(pg, tenant: str) -> dict[str, int]:
    with pg.session() as s:
        rows = s.execute(select(m.Delivery.channel, m.Delivery.status, func.count()).where(
            m.Delivery.tenant_id == tenant).group_by(m.Delivery.channel, m.Delivery.status)).all()
        events = dict(s.execute(select(m.EventRow.status, func.count()).where(
            m.EventRow.tenant_id == tenant).group_by(m.EventRow.status)).all())
        items = s.scalar(select(func.count()).select_from(m.FeedItem).where(
            m.FeedItem.tenant_id == tenant))
        stacked = s.scalar(select(func.count()).select_from(m.FeedItem).where(
            m.FeedItem.tenant_id == tenant, m.FeedItem.count > 1))
    by_status = collections.Counter()
    for _channel, status, n in rows:
        by_status[status] += n
    # a browser delivery is its feed item: settled at routing when no inbox was open (no
    # row), or a row published live (while Redis was down nobody could tell who was online)
    open_browser = sum(n for c, st, n in rows if c == "browser" and st not in ("sent", "failed"))
    emails = {st: n for c, st, n in rows if c == "email"}
    return {"events_routed": events.get("routed", 0), "events_other": sum(
        v for k, v in events.items() if k != "routed"), "feed_items": items,
        "feed_items_stacked": stacked, **{f"deliveries_{k}": v for k, v in by_status.items()},
        "emails_sent": emails.get("sent", 0), "emails_failed": emails.get("failed", 0),
        "browser_open": open_browser, "delivered": items + emails.get("sent", 0)}


class Progress(dict):
    """Counts that are falsy until every delivery is terminal (shown on timeout)."""

    done = False

    def __bool__(self) -> bool:
        return self.done


def all_done(pg, tenant: str, events: int) -> Progress:
    c = Progress(counts(pg, tenant))
    terminal = c["emails_sent"] + c["emails_failed"]
    c.done = (c["events_routed"] == events and c["browser_open"] == 0
              and terminal + c["feed_items"] == events * len(STAFF) * 2)
    return c


def duplicate_mails(mails: list) -> int:
    ids = [DELIVERY_ID.search(str(msg["Message-ID"])).group(1) for msg in mails]
    return sum(n - 1 for n in collections.Counter(ids).values())


def test_sigkill_of_a_worker_mid_batch_loses_nothing(herald, tenant, pg, sink):
    tenant_id, client = tenant
    herald.start_api()
    herald.start_worker("w1")
    herald.start_worker("w2")
    seed(client)
    events = 300
    for start in range(0, events, 100):
        response = client.post("/v1/events:batch",
                               json=[code_event(i) for i in range(start, start + 100)])
        assert response.status_code == 202
    wait_until(lambda: len(sink.messages) >= 150, 60, what="mail flowing")
    herald.kill("w1")  # SIGKILL in the middle of the batch
    killed_at = time.monotonic()
    herald.start_worker("w3")
    done = wait_until(lambda: all_done(pg, tenant_id, events), 120, 0.5, what="every delivery")
    mails = own_mails(sink, pg, tenant_id)
    dups = duplicate_mails(mails)
    record("sigkill_worker", events=events, deliveries=events * len(STAFF) * 2,
           settle_s=round(time.monotonic() - killed_at, 1),
           lost=events * len(STAFF) * 2 - done["delivered"],
           duplicated_feed_items=done["feed_items_stacked"], duplicated_emails=dups,
           mails_received=len(mails))
    assert done["delivered"] == events * len(STAFF) * 2
    assert done["feed_items"] == events * len(STAFF) and done["feed_items_stacked"] == 0
    assert len({DELIVERY_ID.search(str(x["Message-ID"])).group(1) for x in mails}) == \
        events * len(STAFF)


def test_redis_restart_under_publish_load_delivers_everything_accepted(herald, tenant, pg, sink,
                                                                      private_redis):
    tenant_id, client = tenant
    herald.start_api()
    herald.start_worker("w1")
    seed(client)
    accepted: list[str] = []
    refused: list[int] = []
    stop = threading.Event()

    def publish() -> None:
        i = 0
        with Client(herald.url, client.headers["Authorization"].split()[1]) as c:
            while not stop.is_set() and i < 400:
                try:
                    response = c.post("/v1/events", json=code_event(i))
                except httpx.HTTPError:
                    refused.append(-1)
                else:
                    (accepted.append(f"ev-{i}") if response.status_code == 202
                     else refused.append(response.status_code))
                i += 1
                time.sleep(0.02)

    thread = threading.Thread(target=publish)
    thread.start()
    wait_until(lambda: len(accepted) >= 50, 30, what="steady load")
    private_redis.stop()
    time.sleep(3)
    private_redis.start()
    back_at = time.monotonic()
    thread.join(timeout=60)
    stop.set()
    assert set(refused) <= {503}, refused
    done = wait_until(lambda: all_done(pg, tenant_id, len(accepted)), 120, 0.5,
                      what="everything accepted")
    mails = own_mails(sink, pg, tenant_id)
    record("redis_restart", events=len(accepted), refused_503=len(refused),
           settle_s_after_redis_back=round(time.monotonic() - back_at, 1),
           deliveries=len(accepted) * len(STAFF) * 2,
           lost=len(accepted) * len(STAFF) * 2 - done["delivered"],
           duplicated_feed_items=done["feed_items_stacked"],
           duplicated_emails=duplicate_mails(mails))
    assert done["delivered"] == len(accepted) * len(STAFF) * 2
    assert done["feed_items_stacked"] == 0


def test_dropped_postgres_connections_under_load_resume_by_themselves(herald, tenant, pg, sink):
    tenant_id, client = tenant
    herald.start_api()
    herald.start_worker("w1")
    seed(client)
    accepted, refused = [], []
    for i in range(200):
        for _attempt in range(20):
            response = client.post("/v1/events", json=code_event(i))
            if response.status_code == 202:
                accepted.append(i)
                break
            refused.append(response.status_code)
            time.sleep(0.2)
        if i % 40 == 20:
            with pg.engine.connect() as conn:
                killed = conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = current_setting('application_name') "
                    "AND pid <> pg_backend_pid()")).scalar()
            assert killed >= 1
    last_termination = time.monotonic()
    assert len(accepted) == 200 and set(refused) <= {503}
    done = wait_until(lambda: all_done(pg, tenant_id, 200), 120, 0.5, what="every delivery")
    settle_s = round(time.monotonic() - last_termination, 1)
    time.sleep(25)  # past the lease (20 s): a send whose outcome was lost would repeat now
    mails = own_mails(sink, pg, tenant_id)
    record("postgres_connections_dropped", events=200, terminations=5,
           retried_publishes=len(refused), deliveries=200 * len(STAFF) * 2,
           lost=200 * len(STAFF) * 2 - done["delivered"], settle_s=settle_s,
           duplicated_feed_items=done["feed_items_stacked"],
           duplicated_emails=duplicate_mails(mails),
           outcome_commits_retried=herald.log("w1").count("deliver.record_retry"))
    assert done["delivered"] == 200 * len(STAFF) * 2
    assert duplicate_mails(mails) == 0


def test_smtp_down_for_30_seconds_every_mail_arrives_after(herald, tenant, pg, sink):
    tenant_id, client = tenant
    herald.start_api()
    herald.start_worker("w1")
    seed(client)
    sink.stop()
    client.post("/v1/events:batch", json=[code_event(i) for i in range(50)])
    time.sleep(30)
    assert sink.messages == []
    sink.start()
    back_at = time.monotonic()
    done = wait_until(lambda: all_done(pg, tenant_id, 50), 90, 0.5, what="every mail")
    mails = own_mails(sink, pg, tenant_id)
    record("smtp_down_30s", events=50, deliveries=400, settle_s=round(
           time.monotonic() - back_at, 1), lost=400 - done["delivered"],
           duplicated_emails=duplicate_mails(mails), mails_received=len(mails),
           **email_attempts(pg, tenant_id))
    assert len(mails) == 200 and duplicate_mails(mails) == 0


def email_attempts(pg, tenant: str) -> dict[str, int]:
    with pg.session() as s:
        attempts = list(s.scalars(select(m.Delivery.attempts).where(
            m.Delivery.tenant_id == tenant, m.Delivery.channel == "email")))
    return {"email_attempts_total": sum(attempts), "email_attempts_max": max(attempts, default=0),
            "email_deliveries": len(attempts)}


def client_for(herald: Herald, new_tenant_key) -> tuple[str, Client]:
    tenant_id, key, _ = new_tenant_key("Faulty")
    return tenant_id, Client(herald.url, key)


def test_an_smtp_outage_holds_mail_behind_the_breaker_not_spending_attempts(
        deploy, new_tenant_key, pg, sink):
    herald = deploy(max_attempts=16, breaker_failures=5, breaker_cooldown_s=4,
                    breaker_cooldown_max_s=8, breaker_probe_s=4)
    tenant_id, client = client_for(herald, new_tenant_key)
    herald.start_api()
    herald.start_worker("w1")
    seed(client)
    sink.stop()
    client.post("/v1/events:batch", json=[code_event(i) for i in range(50)])
    time.sleep(45)  # at the 2 s backoff ceiling: 20+ attempts each without the breaker
    assert sink.messages == []
    during = email_attempts(pg, tenant_id)
    sink.start()
    back_at = time.monotonic()
    done = wait_until(lambda: all_done(pg, tenant_id, 50), 90, 0.5, what="every mail")
    after = email_attempts(pg, tenant_id)
    log = herald.log("w1")
    mails = own_mails(sink, pg, tenant_id)
    record("smtp_down_45s_breaker", events=50, deliveries=400, outage_s=45,
           settle_s=round(time.monotonic() - back_at, 1), lost=400 - done["delivered"],
           duplicated_emails=duplicate_mails(mails), mails_received=len(mails),
           attempts_spent_during_outage=during["email_attempts_total"],
           max_attempts_of_one_mail_during_outage=during["email_attempts_max"],
           attempts_total=after["email_attempts_total"],
           breaker_opened=log.count("breaker.open"), breaker_probes=log.count("breaker.half_open"),
           breaker_closed=log.count("breaker.closed"))
    client.close()
    assert len(mails) == 200 and duplicate_mails(mails) == 0
    assert during["email_attempts_max"] <= 8 and during["email_attempts_total"] < 200
    assert "breaker.open" in log and "breaker.closed" in log


def test_a_killed_workers_claims_are_released_within_15_seconds(deploy, new_tenant_key, pg,
                                                                  sink):
    herald = deploy(heartbeat_s=2, dead_after_s=10, lease_s=120, sweep_after_s=120,
                    sweep_interval_s=30)
    tenant_id, client = client_for(herald, new_tenant_key)
    sink.data_delay_s = 0.05  # a slow relay: batches stay claimed while they are sent
    herald.start_api()
    w1 = herald.start_worker("w1")
    herald.start_worker("w2")
    seed(client)
    events = 300
    for start in range(0, events, 100):
        assert client.post("/v1/events:batch", json=[
            code_event(i) for i in range(start, start + 100)]).status_code == 202
    wait_until(lambda: claimed_by(pg, w1.pid) >= 10, 60, 0.05, what="w1 sending")
    herald.kill("w1")
    killed_at = time.monotonic()
    in_flight = claimed_by(pg, w1.pid)
    wait_until(lambda: claimed_by(pg, w1.pid) == 0, 30, 0.2, what="w1's claims released")
    released_s = time.monotonic() - killed_at
    done = wait_until(lambda: all_done(pg, tenant_id, events), 120, 0.5, what="every delivery")
    mails = own_mails(sink, pg, tenant_id)
    record("sigkill_worker_claims_released", events=events, deliveries=events * len(STAFF) * 2,
           claims_of_killed_worker=in_flight, released_after_s=round(released_s, 1),
           settle_s=round(time.monotonic() - killed_at, 1),
           lost=events * len(STAFF) * 2 - done["delivered"],
           duplicated_feed_items=done["feed_items_stacked"],
           duplicated_emails=duplicate_mails(mails), mails_received=len(mails))
    client.close()
    assert released_s < 15
    assert done["delivered"] == events * len(STAFF) * 2 and done["feed_items_stacked"] == 0
    assert duplicate_mails(mails) <= in_flight


def claimed_by(pg, pid: int) -> int:
    with pg.session() as s:
        return s.scalar(select(func.count()).select_from(m.Delivery).where(
            m.Delivery.status == "sending", m.Delivery.worker_id.like(f"%:{pid}:%"))) or 0


def test_a_poison_event_fails_alone_visibly_and_can_be_re_driven(herald, tenant, pg, sink):
    tenant_id, client = tenant
    herald.start_api()
    herald.start_worker("w1")
    seed(client)
    with pg.session() as s:  # a stored event whose payload makes routing throw
        s.add(m.EventRow(tenant_id=tenant_id, event_id="ev-1", type="code.paired",
                         payload={"id": "ev-1", "type": "code.paired", "subject": None},
                         status="received"))
    client.post("/v1/events:batch", json=[code_event(i) for i in range(2, 12)])
    wait_until(lambda: client.activity("ev-1")["status"] == "failed", 60, what="poison fails")
    for i in range(2, 12):
        assert client.wait_terminal(f"ev-{i}")["status"] == "routed"
    act = client.activity("ev-1")
    assert act["attempts"] == 3 and "subject" in act["error"]
    listing = herald.cli("deliveries", "failed", "--tenant", tenant_id)
    assert "ev-1" in listing.stdout and "routing failed 3x" in listing.stdout
    with pg.session() as s:  # the fix
        s.execute(update(m.EventRow).where(m.EventRow.tenant_id == tenant_id,
                                           m.EventRow.event_id == "ev-1")
                  .values(payload=code_event(1) | {"tenant": tenant_id}))
    assert herald.cli("deliveries", "retry", "--tenant", tenant_id).returncode == 0
    assert client.wait_terminal("ev-1")["status"] == "routed"
    record("poison_event", events=11, failed_alone=1, rerouted_after_fix=1,
           deliveries=11 * len(STAFF) * 2, lost=0)


def test_failed_deliveries_are_re_driven_after_a_fix(herald, tenant, sink):
    tenant_id, client = tenant
    herald.start_api()
    herald.start_worker("w1")
    seed(client)
    sink.reject("e0@acme.example", 550, "5.1.1 no such user")
    client.post("/v1/events", json=code_event(99))
    act = client.wait_terminal("ev-99")
    [failed] = [d for d in act["deliveries"] if d["status"] == "failed"]
    sink.accept_all()
    assert herald.cli("deliveries", "retry", "--tenant", tenant_id).returncode == 0
    wait_until(lambda: any(d["id"] == failed["id"] and d["status"] == "sent"
                           for d in client.activity("ev-99")["deliveries"]), 30,
               what="the re-driven delivery")


