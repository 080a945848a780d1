"""Retry delays: exponential and bounded, jittered in the upper half of the step, and a
provider's Retry-After wins when it asks for longer."""

from __future__ import annotations

from router.core.config import DeliveryConfig
from router.delivery.deliveries import backoff

CFG = DeliveryConfig(backoff_min_s=2.0, backoff_max_s=60.0)


def delays(attempts: int, retry_after: float | None = None, n: int = 200) -> list[float]:
    return [backoff(attempts, CFG, retry_after) for _ in range(n)]


def test_each_attempt_waits_a_jittered_time_in_the_upper_half_of_a_doubling_step():
    for attempts, ceiling in ((1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0)):
        found = delays(attempts)
        assert all(max(2.0, ceiling / 2) <= d <= ceiling for d in found), (attempts, found)
    assert len({round(d, 3) for d in delays(4)}) > 100  # many retries are spread, not in step


def test_the_delay_never_exceeds_the_maximum_however_many_attempts():
    assert all(30.0 <= d <= 60.0 for a in (6, 10, 40, 1000) for d in delays(a))


def test_a_longer_retry_after_wins_and_a_shorter_one_does_not_shorten_the_wait():
    assert set(delays(1, retry_after=300.0)) == {300.0}
    assert all(4.0 <= d <= 8.0 for d in delays(3, retry_after=0.5))
