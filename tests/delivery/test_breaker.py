"""The per-channel circuit breaker (DESIGN §5), shared by every worker through one row per
channel: it opens after N transient failures in a row, holds deliveries without spending
their attempts, lets exactly one probe through once the cool-down is over, doubles the
cool-down when the probe fails (up to the maximum) and closes on a send.

The session's schema is shared with tests that run workers: each test resets the row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, update

from router.core.config import DeliveryConfig
from router.core.enums import BreakerState, Channel, DeliveryStatus
from router.delivery import breaker, deliveries
from router.delivery.breaker import NOT_ATTEMPTED, Gate
from router.delivery.contracts import Outcome
from router.store import models as m
from router.store.models import utcnow

PUSH = Channel.PUSH
# short, yet long enough that no pause of a loaded machine ends one between two calls
CFG = DeliveryConfig(breaker_failures=3, breaker_cooldown_s=10, breaker_cooldown_max_s=30,
                     breaker_probe_s=10)
DOWN = Outcome.retry("503 service unavailable")


@pytest.fixture
def push_breaker(pg) -> Iterator[None]:
    def reset() -> None:
        with pg.session() as s:
            s.execute(delete(m.ChannelBreaker).where(m.ChannelBreaker.channel == PUSH))

    reset()
    yield
    reset()


def observe(pg, *outcomes: Outcome) -> Gate:
    with pg.session() as s:
        return breaker.observe(s, PUSH, outcomes, CFG)


def gate(pg) -> Gate:
    with pg.session() as s:
        return breaker.gate(s, PUSH, CFG)


def state(pg) -> dict:
    with pg.session() as s:
        return breaker.states(s).get(PUSH, {"state": BreakerState.CLOSED, "failures": 0})


def cool_down_over(pg) -> None:
    """Skip the wait: the breaker's reopen time has passed."""
    with pg.session() as s:
        s.execute(update(m.ChannelBreaker).where(m.ChannelBreaker.channel == PUSH)
                  .values(reopen_at=utcnow() - timedelta(seconds=1)))


def open_breaker(pg) -> None:
    observe(pg, DOWN, DOWN, DOWN)
    assert state(pg)["state"] == BreakerState.OPEN


def test_the_breaker_opens_after_n_transient_failures_in_a_row_and_holds_the_channel(
        pg, push_breaker):
    assert observe(pg, DOWN, DOWN) == breaker.ALL
    assert gate(pg) == breaker.ALL
    held = observe(pg, DOWN)
    assert held.allowed == 0 and held.until is not None
    assert state(pg)["failures"] == 3 and state(pg)["cooldown_s"] == 10
    assert gate(pg) == Gate(0, held.until)


def test_a_send_between_failures_starts_the_count_again(pg, push_breaker):
    observe(pg, DOWN, DOWN)
    observe(pg, Outcome.sent("201 created"))
    observe(pg, DOWN, DOWN)
    assert (state(pg)["state"], state(pg)["failures"]) == (BreakerState.CLOSED, 2)


def test_permanent_failures_and_sends_never_attempted_do_not_open_it(pg, push_breaker):
    observe(pg, *[Outcome.failed("400 bad request")] * 5)
    observe(pg, *[Outcome.retry(f"{NOT_ATTEMPTED}: the lease ran short")] * 5)
    assert state(pg)["state"] == BreakerState.CLOSED and gate(pg) == breaker.ALL


def test_after_the_cool_down_one_probe_goes_and_the_rest_wait_for_its_answer(
        pg, push_breaker):
    open_breaker(pg)
    cool_down_over(pg)
    first, second = gate(pg), gate(pg)
    assert first.allowed == 1 and second.allowed == 0
    assert state(pg)["state"] == BreakerState.HALF_OPEN
    cool_down_over(pg)  # the probe's worker died without an answer: another probe may go
    assert gate(pg).allowed == 1


def test_a_failed_probe_reopens_with_double_the_cool_down_up_to_the_maximum(pg, push_breaker):
    open_breaker(pg)
    cool_downs = []
    for _ in range(3):
        cool_down_over(pg)
        assert gate(pg).allowed == 1
        assert observe(pg, DOWN).allowed == 0
        cool_downs.append((state(pg)["state"], state(pg)["cooldown_s"]))
    assert cool_downs == [(BreakerState.OPEN, 20), (BreakerState.OPEN, 30), (BreakerState.OPEN, 30)]


def test_a_probe_that_is_sent_closes_the_breaker_and_clears_its_cool_down(pg, push_breaker):
    open_breaker(pg)
    cool_down_over(pg)
    gate(pg)
    assert observe(pg, Outcome.sent("201 created")) == breaker.ALL
    assert state(pg) == {"state": BreakerState.CLOSED, "failures": 0, "cooldown_s": 0.0,
                         "reopen_at": None}
    assert gate(pg) == breaker.ALL


def test_deliveries_held_by_an_open_breaker_spend_no_attempt(pg, planned, row):
    claimed, waiting = planned(channel=PUSH), planned(channel=PUSH)
    until = utcnow() + timedelta(seconds=30)
    with pg.session() as s:
        deliveries.claim(s, [claimed], PUSH, 60)
        assert deliveries.hold(s, [claimed], until, "held: the push breaker is open") == [claimed]
        assert deliveries.defer(s, [waiting], PUSH, until) == [waiting]
    for did in (claimed, waiting):
        found = row(did)
        assert (found.status, found.attempts, found.next_attempt_at) == (
            DeliveryStatus.PENDING, 0, until)
    with pg.session() as s:
        assert deliveries.claim(s, [claimed, waiting], PUSH, 60) == []
