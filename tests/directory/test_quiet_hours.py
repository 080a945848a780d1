"""Quiet hours (DESIGN §10): local windows, judged at a given instant (a controllable
clock, never a sleep), across midnight, weekdays and the DST changes of Europe/Berlin."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from router.core.errors import RuleFileError, ValidationFailed
from router.directory import directory as d
from router.directory import tenants
from router.directory.quiet import check_zone, deferral, overlaps, zone_for
from router.directory.settings import SettingsIn
from router.ruleset.rulefile import load_ruleset
from tests.ruleset.test_rule_compiler import CATALOGUE

BERLIN = zone_for("Europe/Berlin")
NIGHTS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "22:00", "to": "07:00"}]


def berlin(*wall: int) -> datetime:
    """An instant given as Berlin wall time."""
    return datetime(*wall, tzinfo=BERLIN)  # type: ignore[misc]


def until(windows: list[dict], now: datetime, zone: str = "Europe/Berlin") -> datetime | None:
    found = deferral(windows, zone_for(zone), now)
    return found.until if found else None


# 2026-12-07 is a Monday
def test_a_window_across_midnight_holds_from_its_start_to_the_next_mornings_end():
    assert until(NIGHTS, berlin(2026, 12, 7, 21, 59)) is None
    assert until(NIGHTS, berlin(2026, 12, 7, 22, 0)) == berlin(2026, 12, 8, 7, 0)
    assert until(NIGHTS, berlin(2026, 12, 8, 3, 30)) == berlin(2026, 12, 8, 7, 0)
    assert until(NIGHTS, berlin(2026, 12, 8, 7, 0)) is None
    # Friday's window ends on Saturday morning; Saturday night is not quiet
    assert until(NIGHTS, berlin(2026, 12, 12, 6, 0)) == berlin(2026, 12, 12, 7, 0)
    assert until(NIGHTS, berlin(2026, 12, 12, 23, 0)) is None


def test_a_monday_only_window_is_not_quiet_on_sunday_night():
    monday = [{"days": ["mon"], "from": "00:00", "to": "07:00"}]
    assert until(monday, berlin(2026, 12, 6, 23, 30)) is None  # Sunday
    assert until(monday, berlin(2026, 12, 7, 0, 30)) == berlin(2026, 12, 7, 7, 0)
    assert until(monday, berlin(2026, 12, 14, 6, 59)) == berlin(2026, 12, 14, 7, 0)
    late = [{"days": ["mon"], "from": "22:00", "to": "07:00"}]
    assert until(late, berlin(2026, 12, 6, 23, 30)) is None
    assert until(late, berlin(2026, 12, 7, 3, 0)) is None  # Sunday's night is not Monday's


def test_the_same_utc_instant_is_quiet_in_one_zone_and_not_in_another():
    at = datetime(2026, 12, 7, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, 17:30 in New York
    assert until(NIGHTS, at) == berlin(2026, 12, 8, 7, 0)
    assert until(NIGHTS, at, "America/New_York") is None


def test_a_window_across_the_spring_forward_hour_ends_at_the_local_end():
    # Berlin, Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST; the night is an hour shorter
    saturday = [{"days": ["sat"], "from": "22:00", "to": "07:00"}]
    found = deferral(saturday, BERLIN, datetime(2026, 3, 29, 0, 30, tzinfo=UTC))
    assert found is not None and found.label == "07:00 Europe/Berlin"
    assert found.until == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 07:00 CEST
    assert until(saturday, datetime(2026, 3, 28, 20, 59, tzinfo=UTC)) is None  # 21:59 CET
    # an end the clock skips ends when the gap does (03:00 CEST), not an hour late
    into_gap = [{"days": ["sun"], "from": "01:00", "to": "02:30"}]
    assert until(into_gap, datetime(2026, 3, 29, 0, 45, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC)


def test_a_window_across_the_fall_back_hour_ends_at_the_local_end():
    # Berlin, Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET; the night is an hour longer
    saturday = [{"days": ["sat"], "from": "22:00", "to": "07:00"}]
    assert until(saturday, datetime(2026, 10, 24, 20, 0, tzinfo=UTC)) == datetime(
        2026, 10, 25, 6, 0, tzinfo=UTC)  # 07:00 CET
    assert until(saturday, datetime(2026, 10, 25, 5, 59, tzinfo=UTC)) is not None
    # an end the clock shows twice is its first showing
    twice = [{"days": ["sun"], "from": "01:00", "to": "02:30"}]
    assert until(twice, datetime(2026, 10, 25, 0, 15, tzinfo=UTC)) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert until(twice, datetime(2026, 10, 25, 1, 15, tzinfo=UTC)) is None  # 02:15 CET


def test_windows_that_join_defer_to_the_end_of_the_last():
    joined = [{"days": ["mon"], "from": "22:00", "to": "07:00"},
              {"days": ["tue"], "from": "07:00", "to": "09:00"}]
    assert until(joined, berlin(2026, 12, 7, 23, 0)) == berlin(2026, 12, 8, 9, 0)


def test_an_unknown_zone_is_refused_and_a_missing_one_falls_back_to_the_tenants_then_utc():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        check_zone("Mars/Olympus")
    with pytest.raises(ValidationError) as refused:
        d.UserIn(id="ann", time_zone="Europe/Berlln")
    assert [e["loc"] for e in refused.value.errors()] == [("time_zone",)]
    assert zone_for(None, "Europe/Berlin").key == "Europe/Berlin"
    assert zone_for("Asia/Tokyo", "Europe/Berlin").key == "Asia/Tokyo"
    assert zone_for(None, None).key == "UTC"


def test_a_tenant_with_an_unknown_default_zone_is_refused(session):
    with pytest.raises(ValidationFailed, match="time_zone"):
        tenants.create(session, "Zoned", time_zone="Europe/Nowhere")


def field_errors(document: dict) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as refused:
        SettingsIn.model_validate(document)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in refused.value.errors()]


@pytest.mark.parametrize("window, path", [
    ({"days": ["mon"], "from": "24:00", "to": "07:00"}, "quiet_hours.0.from"),
    ({"days": ["mon"], "from": "7:00", "to": "07:30"}, "quiet_hours.0.from"),
    ({"days": ["mon"], "from": "22:00", "to": "22:00"}, "quiet_hours.0.to"),
    ({"days": ["monday"], "from": "22:00", "to": "07:00"}, "quiet_hours.0.days.0"),
    ({"days": ["mon", "mon"], "from": "22:00", "to": "07:00"}, "quiet_hours.0.days"),
    ({"days": [], "from": "22:00", "to": "07:00"}, "quiet_hours.0.days"),
])
def test_a_bad_window_is_refused_at_its_field(window, path):
    assert [p for p, _ in field_errors({"quiet_hours": [window]})] == [path]


def test_overlapping_windows_name_the_later_one_across_midnight_and_the_week_end():
    def clash(*windows: dict) -> list[tuple[str, str]]:
        return overlaps(SettingsIn.model_validate({"quiet_hours": list(windows)}).quiet_hours)

    nights = {"days": ["sun", "mon"], "from": "22:00", "to": "07:00"}
    assert clash(nights, {"days": ["tue"], "from": "06:00", "to": "08:00"}) == [
        ("quiet_hours.1.from", "overlaps quiet_hours.0 (the window starting tue)")]
    assert clash(nights, {"days": ["mon"], "from": "06:00", "to": "08:00"})[0][0] == \
        "quiet_hours.1.from"  # Sunday's night ends Monday 07:00
    assert clash({"days": ["sun"], "from": "23:00", "to": "01:00"},
                 {"days": ["mon"], "from": "00:30", "to": "02:00"})  # across the week's end
    assert clash(nights, {"days": ["tue"], "from": "07:00", "to": "09:00"}) == []  # they join


def test_settings_keep_their_quiet_hours_as_written(session, tenant):
    d.put_user(session, tenant, d.UserIn(id="ann", time_zone="Europe/Berlin"))
    d.put_settings(session, tenant, "ann", SettingsIn.model_validate({"quiet_hours": NIGHTS}))
    back = d.get_settings(session, tenant, "ann")
    assert back.model_dump(by_alias=True)["quiet_hours"] == NIGHTS


@pytest.mark.parametrize("value, ok, said", [("true", True, ""), ("'yes'", False, "'yes'"),
                                             ("maybe", False, "'maybe'"), ("1", False, "1")])
def test_critical_on_an_event_type_is_a_boolean_checked_at_its_line(tmp_path: Path, value, ok,
                                                                    said):
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE.read_text().replace(
        "code.paired:            {", f"code.paired:            {{critical: {value}, "))
    if ok:
        assert load_ruleset(tmp_path).events["code.paired"].critical is True
        return
    with pytest.raises(RuleFileError) as caught:
        load_ruleset(tmp_path)
    [problem] = [p.located() for p in caught.value.problems]
    line = next(n for n, text in enumerate(CATALOGUE.read_text().splitlines(), 1)
                if text.lstrip().startswith("code.paired:"))
    assert problem.endswith(f"catalogue.yaml:{line}:28: critical is true or false; got {said}")


def test_the_shipped_catalogue_marks_direct_calls_critical_and_nothing_else(ruleset):
    assert [t for t, spec in ruleset.events.items() if spec.critical] == [
        "video_session.direct_call"]
