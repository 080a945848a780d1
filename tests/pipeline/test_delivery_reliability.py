"""Delivery reliability in one process: a real Dramatiq worker (in-process broker) on the
real PostgreSQL, mailing a real SMTP sink. Re-sends keep their Message-ID, an outcome
that could not be stored is stored again (the mail is not sent again), a retry message
that comes early is run when due, and a lost message is found within seconds."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from router.core.config import DeliveryConfig, load_config
from router.core.enums import Channel, DeliveryStatus
from router.delivery import deliveries
from router.delivery.contracts import Outcome
from router.runtime import Runtime
from router.store import models as m
from router.store.models import utcnow
from tests import factories as f
from tests.conftest import PG_URL, RULES, SCHEMA
from tests.harness import wait_until
from tests.servers.smtp import SmtpSink
from workers.actors import deliver
from workers.broker import Sweeper

WORKER_APP = f"{SCHEMA}-worker"  # the runtime's own connections, to terminate them alone
FAST = {"backoff_min_s": 0.2, "backoff_max_s": 0.5, "sweep_interval_s": 1, "sweep_after_s": 3,
        "lease_s": 3, "heartbeat_s": 0.5, "dead_after_s": 5, "lost_after_s": 60}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def start(sink: SmtpSink, sweeper: bool = False, **delivery: Any) -> tuple[Runtime, Sweeper]:
    config = load_config(
        database_url=PG_URL.replace(f"application_name={SCHEMA}", f"application_name={WORKER_APP}"),
        broker_url="", rules_path=RULES, smtp={"port": sink.port},
        delivery={**FAST, **delivery})
    runtime = Runtime(config)
    runtime.workers.start(threads=2)
    sweep = Sweeper(runtime)
    if sweeper:
        sweep.start()
    return runtime, sweep


@pytest.fixture
def worker(sink, pg) -> Iterator[Any]:
    started: list[tuple[Runtime, Sweeper]] = []

    def make(**kw: Any) -> Runtime:
        started.append(start(sink, **kw))
        return started[-1][0]

    yield make
    for runtime, sweep in started:
        sweep.stop()
        runtime.close()


def planned_email(pg, due_in_s: float | None = None) -> int:
    with pg.session() as s:
        tenant = f.new_tenant(s).id
        f.employee(s, tenant, "u1", email="u1@acme.example")
        ev = m.EventRow(tenant_id=tenant, event_id=uuid.uuid4().hex, type="code.paired",
                        payload={"type": "code.paired", "id": "e",
                                 "subject": {"kind": "code", "id": "QR-1", "number": "QR-1"}})
        s.add(ev)
        s.flush()
        row = m.Delivery(
            tenant_id=tenant, event_pk=ev.pk, receiver_kind="employee", receiver_id="u1",
            channel=Channel.EMAIL, status=DeliveryStatus.PENDING, strategy="all",
            content={"language": "en", "title": "Paired", "message": "QR-1 paired", "link": "",
                     "email": "u1@acme.example", "name": "U", "created_at": utcnow().isoformat()},
            next_attempt_at=utcnow() + timedelta(seconds=due_in_s) if due_in_s else None)
        s.add(row)
        s.flush()
        return row.id


def status(pg, delivery_id: int) -> tuple[str, int]:
    with pg.session() as s:
        row = s.get(m.Delivery, delivery_id)
        assert row is not None
        return row.status, row.attempts


def settled(pg, delivery_id: int) -> tuple[str, int]:
    return wait_until(lambda: (found := status(pg, delivery_id))[0] != DeliveryStatus.SENDING
                      and found, 10, what="the outcome recorded")


def test_a_mail_retried_after_a_transient_smtp_error_keeps_its_message_id(worker, sink, pg):
    runtime = worker()
    sink.fail_next(1, 421, "4.3.2 try again later")
    delivery = planned_email(pg)
    runtime.workers.enqueue_deliveries({Channel.EMAIL: [delivery]})
    [mail] = sink.wait_for(1, timeout=20)
    [refused] = sink.refused
    assert mail["Message-ID"] == refused["Message-ID"]
    assert re.match(rf"<herald\.{delivery}\.[0-9a-f]+@", mail["Message-ID"])
    assert settled(pg, delivery) == (DeliveryStatus.SENT, 2)


def test_a_mail_whose_outcome_could_not_be_stored_is_not_sent_again(worker, sink, pg):
    runtime = worker(sweeper=True)
    killed = terminate_the_record_once(runtime)
    delivery = planned_email(pg)
    runtime.workers.enqueue_deliveries({Channel.EMAIL: [delivery]})
    wait_until(lambda: status(pg, delivery)[0] == DeliveryStatus.SENT, 30, what="sent")
    assert killed == [True], "the worker's connection was not terminated during the record"
    wait_for_lease_and_sweeps()
    assert len(mails_of(sink, delivery)) == 1  # other tests' leftovers may reach this sink
    assert status(pg, delivery) == (DeliveryStatus.SENT, 1)


def mails_of(sink: SmtpSink, delivery: int) -> list[Any]:
    return [mail for mail in sink.messages if f"<herald.{delivery}." in mail["Message-ID"]]


def terminate_the_record_once(runtime: Runtime) -> list[bool]:
    """Terminate the worker's own connection right after the SMTP accept, as the
    outcome's transaction starts (what `pg_terminate_backend` under load did)."""
    killed: list[bool] = []

    def before(conn, cursor, statement, *_: Any) -> None:
        if killed or "FOR UPDATE" not in statement or "SKIP LOCKED" in statement \
                or "FROM deliveries" not in statement:
            return
        killed.append(True)
        pid = conn.connection.dbapi_connection.info.backend_pid
        with runtime.db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    event.listen(runtime.db.engine, "before_cursor_execute", before)
    return killed


def wait_for_lease_and_sweeps() -> None:
    time.sleep(FAST["lease_s"] + 2 * FAST["sweep_interval_s"] + 1)


def test_a_retry_message_that_comes_early_is_run_when_its_delivery_is_due(worker, sink, pg):
    runtime = worker()  # no sweeper: only the message itself can send the mail
    delivery = planned_email(pg, due_in_s=1.5)
    runtime.workers.enqueue_deliveries({Channel.EMAIL: [delivery]})  # arrives 1.5 s early
    sink.wait_for(1, timeout=8)
    assert settled(pg, delivery) == (DeliveryStatus.SENT, 1)


def test_a_scheduled_retry_message_is_never_due_before_its_delivery(pg):
    cfg = DeliveryConfig(backoff_min_s=1.24, backoff_max_s=1.24)  # every delay is 1.24 s
    ids = [planned_email(pg) for _ in range(3)]
    with pg.session() as s:
        deliveries.claim(s, ids, Channel.EMAIL, 60)
        todo = deliveries.record(s, {i: Outcome.retry("451 busy") for i in ids}, cfg)
    assert sorted(i for group in todo.retry.values() for i in group) == sorted(ids)
    assert min(todo.retry) >= 1.24  # the message's delay, from after the commit


def test_a_delivery_whose_message_was_lost_is_sent_within_seconds(worker, sink, pg):
    worker(sweeper=True, sweep_after_s=120, sweep_interval_s=30, lost_after_s=2)
    delivery = planned_email(pg)  # committed, never enqueued: its message was lost
    sink.wait_for(1, timeout=10)
    assert settled(pg, delivery) == (DeliveryStatus.SENT, 1)


def test_the_lost_message_pass_leaves_claimed_and_not_yet_due_work_alone(pg):
    claimed, later, lost = planned_email(pg), planned_email(pg, due_in_s=60), planned_email(pg)
    with pg.session() as s:
        deliveries.claim(s, [claimed], Channel.EMAIL, 600, "a-live-worker")
        s.execute(m.Delivery.__table__.update().where(m.Delivery.id.in_([claimed, lost]))
                  .values(updated_at=utcnow() - timedelta(seconds=30)))
    with pg.session() as s:
        first = deliveries.lost_messages(s, [Channel.EMAIL], 10, limit=100000)
    with pg.session() as s:
        again = deliveries.lost_messages(s, [Channel.EMAIL], 10, limit=100000)
    found = first.get(Channel.EMAIL, [])
    assert lost in found and claimed not in found and later not in found
    assert lost not in again.get(Channel.EMAIL, [])  # once per period, not on every pass
    assert status(pg, claimed) == (DeliveryStatus.SENDING, 1)


def test_a_silent_workers_claims_are_released_once_and_a_beating_workers_never(pg):
    from router.store import heartbeats

    dead_claim, live_claim = planned_email(pg), planned_email(pg)
    dead, live = f"host:1:{uuid.uuid4().hex[:6]}", f"host:2:{uuid.uuid4().hex[:6]}"
    with pg.session() as s:
        assert heartbeats.beat(s, dead) is False and heartbeats.beat(s, live) is False
        deliveries.claim(s, [dead_claim], Channel.EMAIL, 600, dead)
        deliveries.claim(s, [live_claim], Channel.EMAIL, 600, live)
        s.execute(m.WorkerHeartbeat.__table__.update().where(
            m.WorkerHeartbeat.worker_id == dead).values(beat_at=utcnow() - timedelta(seconds=60)))
    with pg.session() as s:
        assert heartbeats.beat(s, live) is True
        first = heartbeats.take_dead(s, 10)
    with pg.session() as s:
        second = heartbeats.take_dead(s, 10)
    assert dead in first and dead not in second and live not in first
    with pg.session() as s:
        released = deliveries.release_claims(s, dead)
    assert released == {Channel.EMAIL: [dead_claim]}
    assert status(pg, dead_claim) == (DeliveryStatus.PENDING, 1)
    assert status(pg, live_claim) == (DeliveryStatus.SENDING, 1)


def test_an_event_whose_route_message_was_lost_is_routed_within_seconds(worker, sink, pg):
    worker(sweeper=True, sweep_after_s=120, sweep_interval_s=30, lost_after_s=2)
    with pg.session() as s:  # stored and accepted, but its enqueue timed out: no message
        tenant = f.new_tenant(s).id
        f.employee(s, tenant, "admin-1", roles=["admin"], email="admin-1@acme.example")
        s.add(m.EventRow(tenant_id=tenant, event_id="lost-1", type="code.paired",
                         payload={"type": "code.paired", "id": "lost-1",
                                  "subject": {"kind": "code", "id": "QR-9", "number": "QR-9"}},
                         received_at=utcnow() - timedelta(seconds=3)))
    wait_until(lambda: any(mail["To"] == "admin-1@acme.example" for mail in sink.messages), 15,
               what="the mail of the lost event")  # other tests' leftovers may come too


def test_the_lost_event_pass_leaves_retried_and_recent_events_alone(pg):
    with pg.session() as s:
        tenant = f.new_tenant(s).id
        old = utcnow() - timedelta(seconds=30)
        rows = [m.EventRow(tenant_id=tenant, event_id=name, type="code.paired", payload={},
                           received_at=at, attempts=tries)
                for name, at, tries in (("lost", old, 0), ("retrying", old, 1),
                                        ("fresh", utcnow(), 0))]
        s.add_all(rows)
        s.flush()
        pks = {r.event_id: r.pk for r in rows}
    with pg.session() as s:
        found = deliveries.lost_events(s, 10, limit=100000)
    assert pks["lost"] in found
    assert pks["retrying"] not in found and pks["fresh"] not in found


def test_a_delivery_whose_data_cannot_be_prepared_fails_alone_and_its_batch_is_sent(worker,
                                                                                     sink, pg):
    runtime = worker()
    good, broken = planned_email(pg), planned_email(pg)
    with pg.session() as s:  # an event row damaged by hand: its subject is no object
        row = s.get(m.Delivery, broken)
        assert row is not None
        event = s.get(m.EventRow, row.event_pk)
        assert event is not None
        event.payload = {**event.payload, "subject": "QR-1"}
    deliver(runtime, Channel.EMAIL, [broken, good])
    assert status(pg, good) == (DeliveryStatus.SENT, 1)
    assert len(sink.wait_for(1)) == 1
    assert status(pg, broken)[0] == DeliveryStatus.FAILED
    with pg.session() as s:
        failed = s.get(m.Delivery, broken)
        assert failed is not None
        assert "could not prepare this delivery: AttributeError" in (failed.last_error or "")
