"""The email digest cadence: when an email routed at a given instant goes out, in the
receiver's local time, across DST changes (a controllable clock: ``now`` is given)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from router.directory.quiet import EmailDigest, cadence_due, next_local_hour

BERLIN, KOLKATA = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kolkata")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_immediate_means_no_wait():
    assert cadence_due(None, BERLIN, at("2026-12-07T10:20:00+00:00")) is None
    assert cadence_due({"cadence": "immediate"}, BERLIN, at("2026-12-07T10:20:00+00:00")) is None


def test_hourly_goes_out_at_the_next_full_local_hour():
    due = cadence_due({"cadence": "hourly"}, BERLIN, at("2026-12-07T10:20:00+00:00"))
    assert due is not None and due.until == at("2026-12-07T11:00:00+00:00")
    assert due.label == "12:00 Europe/Berlin (hourly digest)"


def test_a_half_hour_zone_has_its_own_full_hours():
    # Kolkata is UTC+05:30: its full hours fall on UTC half hours
    assert next_local_hour(at("2026-12-07T10:20:00+00:00"), KOLKATA) == \
        at("2026-12-07T10:30:00+00:00")


def test_hourly_across_the_autumn_repeated_hour_counts_both_hours():
    # 2026-10-25 02:00-03:00 Berlin happens twice (CEST, then CET)
    first = next_local_hour(at("2026-10-25T00:10:00+00:00"), BERLIN)  # 02:10 CEST
    assert first == at("2026-10-25T01:00:00+00:00")  # 02:00 CET: the repeated hour's start


def test_daily_goes_out_at_the_chosen_local_time_today_or_tomorrow():
    morning = {"cadence": "daily", "at": "08:00"}
    before = cadence_due(morning, BERLIN, at("2026-12-07T06:00:00+00:00"))  # 07:00 local
    after = cadence_due(morning, BERLIN, at("2026-12-07T07:30:00+00:00"))  # 08:30 local
    assert before is not None and before.until == at("2026-12-07T07:00:00+00:00")
    assert after is not None and after.until == at("2026-12-08T07:00:00+00:00")
    assert after.label == "08:00 Europe/Berlin (daily digest)"


def test_daily_across_the_spring_forward_night_keeps_the_local_time():
    # Berlin skips 02:00-03:00 on 2026-03-29: 08:00 is UTC+1 the day before, UTC+2 that day
    due = cadence_due({"cadence": "daily", "at": "08:00"}, BERLIN, at("2026-03-28T12:00:00+00:00"))
    assert due is not None and due.until == at("2026-03-29T06:00:00+00:00")
    gap = cadence_due({"cadence": "daily", "at": "02:30"}, BERLIN, at("2026-03-28T12:00:00+00:00"))
    assert gap is not None and gap.until == at("2026-03-29T01:00:00+00:00")  # 03:00 CEST


@pytest.mark.parametrize(("raw", "field"), [
    ({"cadence": "daily"}, "at"), ({"cadence": "hourly", "at": "08:00"}, "at"),
    ({"cadence": "weekly"}, "cadence"), ({"cadence": "daily", "at": "8am"}, "at"),
])
def test_a_bad_cadence_names_its_field(raw, field):
    with pytest.raises(ValidationError) as caught:
        EmailDigest.model_validate(raw)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]
