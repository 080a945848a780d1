"""The delivery state machine (DESIGN §5): claims, outcomes and guarded moves on PostgreSQL.
A delivery is claimed once, sent or retried with a due time, failed when its attempts or its
retry window run out, and a failed `first_success` step hands over to the next channel."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from router.core.config import DeliveryConfig
from router.core.enums import Channel, DeliveryStatus, OutcomeStatus, Strategy
from router.delivery import deliveries
from router.delivery.contracts import Outcome
from router.store import models as m
from router.store.models import utcnow

CFG = DeliveryConfig(backoff_min_s=5, backoff_max_s=5)  # every retry waits exactly 5 s


def claim(pg, *ids: int, channel: Channel = Channel.EMAIL, worker: str | None = None) -> list[int]:
    with pg.session() as s:
        return [r.id for r in deliveries.claim(s, list(ids), channel, 60, worker)]


def record(pg, outcomes: dict[int, Outcome], cfg: DeliveryConfig = CFG,
           worker: str | None = None) -> deliveries.Recorded:
    with pg.session() as s:
        return deliveries.record(s, outcomes, cfg, worker)


def history(pg, delivery_id: int) -> list[str]:
    with pg.session() as s:
        return [f"{line.status}: {line.detail}" for line in s.execute(
            select(m.DeliveryLog).where(m.DeliveryLog.delivery_id == delivery_id)
            .order_by(m.DeliveryLog.id)).scalars()]


def test_a_delivery_is_claimed_once_and_not_before_it_is_due(pg, planned, row):
    now, later = planned(), planned(next_attempt_at=utcnow() + timedelta(minutes=5))
    assert claim(pg, now, later) == [now]
    assert claim(pg, now, later) == []
    assert claim(pg, now, channel=Channel.PUSH) == []
    assert (row(now).status, row(now).attempts) == (DeliveryStatus.SENDING, 1)
    assert (row(later).status, row(later).attempts) == (DeliveryStatus.PENDING, 0)


def test_a_sent_outcome_settles_the_delivery_with_the_providers_reference(pg, planned, row):
    did = planned()
    claim(pg, did)
    todo = record(pg, {did: Outcome.sent("250 accepted", provider_ref="<m1@herald>")})
    found = row(did)
    assert (found.status, found.provider_response) == (DeliveryStatus.SENT, "<m1@herald>")
    assert found.lease_until is None and found.worker_id is None
    assert todo == deliveries.Recorded()
    assert history(pg, did) == ["sending: attempt 1", "sent: 250 accepted"]


def test_a_transient_failure_goes_back_to_pending_due_after_the_backoff(pg, planned, row):
    did = planned()
    claim(pg, did)
    before = utcnow()
    todo = record(pg, {did: Outcome.retry("451 try later")})
    found = row(did)
    assert (found.status, found.attempts, found.last_error) == (
        DeliveryStatus.PENDING, 1, "451 try later")
    assert before + timedelta(seconds=5) <= found.next_attempt_at <= utcnow() + timedelta(seconds=5)
    assert todo.retry == {5.0: [did]}
    assert claim(pg, did) == []  # not due yet
    assert history(pg, did)[-1] == "pending: retry in 5.0s: 451 try later"


def test_a_delivery_gives_up_when_its_attempts_or_its_retry_window_run_out(pg, planned, row):
    last, old = planned(), planned(created_at=utcnow() - timedelta(seconds=100))
    claim(pg, last, old)
    todo = record(pg, {last: Outcome.retry("451 busy")}, DeliveryConfig(max_attempts=1))
    assert (row(last).status, row(last).last_error) == (
        DeliveryStatus.FAILED, "gave up after 1 attempts: 451 busy")
    assert todo.retry == {}
    # 100 s old, 30 s to wait, 120 s allowed: it would retry too late, so it fails now
    cfg = DeliveryConfig(backoff_min_s=30, backoff_max_s=30, retry_window_s=120)
    record(pg, {old: Outcome.retry("connection refused")}, cfg)
    assert row(old).status == DeliveryStatus.FAILED
    assert "retry window of 120s ran out" in row(old).last_error


def test_a_gone_address_fails_for_good_and_under_strategy_all_nothing_follows(pg, planned, row):
    did = planned(channel=Channel.PUSH, chain=["email"])  # a chain means nothing under `all`
    claim(pg, did, channel=Channel.PUSH)
    todo = record(pg, {did: Outcome(OutcomeStatus.GONE, "410 subscription expired")})
    assert (row(did).status, row(did).last_error) == (
        DeliveryStatus.FAILED, "gone: 410 subscription expired")
    assert todo == deliveries.Recorded()


def test_a_failed_first_success_step_hands_over_to_the_next_channel_of_its_chain(pg, planned, row):
    did = planned(strategy=Strategy.FIRST_SUCCESS, chain=["push", "browser"])
    claim(pg, did)
    todo = record(pg, {did: Outcome.failed("550 no such mailbox")})
    [next_id] = todo.next_steps[Channel.PUSH]
    step = row(next_id)
    assert (step.status, step.channel, step.step, step.chain, step.attempts) == (
        DeliveryStatus.PENDING, Channel.PUSH, 1, ["browser"], 0)
    assert step.receiver_id == row(did).receiver_id and step.event_pk == row(did).event_pk
    assert history(pg, did)[-1] == f"failed: next: push (delivery {next_id})"
    assert history(pg, next_id) == [
        "pending: step 1: tried because email did not succeed (550 no such mailbox)"]


def test_a_later_step_on_push_or_email_waits_for_the_quiet_hours_routing_found(pg, planned, row):
    end = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
    quiet = {"language": "en", "title": "T", "message": "M",
             "quiet_until": "07:00 Europe/Berlin", "quiet_until_at": end.isoformat()}
    did = planned(channel=Channel.BROWSER, strategy=Strategy.FIRST_SUCCESS, chain=["push"],
                  content=quiet)
    claim(pg, did, channel=Channel.BROWSER)
    todo = record(pg, {did: Outcome(OutcomeStatus.UNACKED, "no live session acknowledged")})
    [(next_id, due)] = todo.later[Channel.PUSH].items()
    assert todo.next_steps == {} and due == end == row(next_id).next_attempt_at
    assert history(pg, next_id) == [
        "pending: step 1: tried because browser did not succeed (no live session acknowledged)"
        "; push deferred by quiet hours until 07:00 Europe/Berlin"]
    over = planned(strategy=Strategy.FIRST_SUCCESS, chain=["push"], content={
        **quiet, "quiet_until_at": (utcnow() - timedelta(seconds=1)).isoformat()})
    claim(pg, over)
    assert record(pg, {over: Outcome.failed("550 no such mailbox")}).next_steps[Channel.PUSH]


def test_a_sent_first_success_step_ends_the_sequence_and_names_what_was_not_tried(
        pg, planned, row):
    did = planned(strategy=Strategy.FIRST_SUCCESS, chain=["push", "browser"])
    claim(pg, did)
    todo = record(pg, {did: Outcome.sent("250 ok")})
    assert todo.next_steps == {} and row(did).status == DeliveryStatus.SENT
    assert history(pg, did)[-1] == "sent: 250 ok; sequence ended here, not tried: push, browser"


def test_an_outcome_for_a_delivery_no_longer_sending_moves_nothing(pg, planned, row):
    did = planned(strategy=Strategy.FIRST_SUCCESS, chain=["push"])
    claim(pg, did)
    record(pg, {did: Outcome.failed("550 no such mailbox")})
    again = record(pg, {did: Outcome.failed("550 no such mailbox")})  # a duplicate message
    assert again == deliveries.Recorded()  # no second next step
    late = record(pg, {did: Outcome.sent("250 ok")})
    assert late == deliveries.Recorded() and row(did).status == DeliveryStatus.FAILED


def test_a_worker_taken_for_dead_cannot_record_over_the_worker_that_claimed_it_next(
        pg, planned, row):
    did = planned()
    claim(pg, did, worker="old")
    with pg.session() as s:
        deliveries.release_claims(s, "old")
    claim(pg, did, worker="new")
    record(pg, {did: Outcome.failed("550 from the old worker")}, worker="old")
    assert (row(did).status, row(did).worker_id) == (DeliveryStatus.SENDING, "new")
    record(pg, {did: Outcome.sent("250 ok")}, worker="new")
    assert (row(did).status, row(did).attempts) == (DeliveryStatus.SENT, 2)
