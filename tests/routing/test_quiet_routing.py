"""Quiet hours at routing (DESIGN §10): push and email rows wait for the window's end as
timers, the feed item is written at once, critical event types go through; the plan and
the activity view say so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from router.cli.explain import render_plan
from router.core.enums import Channel, DeliveryStatus, ReceiverKind
from router.delivery import deliveries
from router.directory.audience import DirectoryView
from router.routing.pipeline import EventRouter, publish
from router.routing.planner import plan_event
from router.routing.texts import TextCatalogue
from router.store import models as m
from router.store.models import utcnow
from tests import factories as f

NIGHTS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "22:00", "to": "07:00"}]
MONDAY_NIGHT = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)  # 00:30 Tuesday in Berlin
TUESDAY_7_BERLIN = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)


@pytest.fixture
def people(session, tenant):
    """ann sleeps in Berlin, bob (no zone of his own) in the tenant's zone (none: UTC)."""
    f.employee(session, tenant, "ann", time_zone="Europe/Berlin")
    f.employee(session, tenant, "bob")
    for uid in ("ann", "bob"):
        f.settings(session, tenant, uid, quiet_hours=NIGHTS)
    f.template(session, tenant, "tpl", notification_receivers=[
        {"id": "g", "members": f.users("ann", "bob")}],
        call_participants=[{"id": "calls", "members": f.users("ann")}])
    return tenant


def plan_at(session, tenant, engine, etype, now):
    event = f.event(etype, tenant, subject={"template_id": "tpl"}, actor="someone")
    return plan_event(event, DirectoryView(session, tenant), engine, now=now)


def test_a_receiver_in_quiet_hours_is_planned_with_push_and_email_deferred(session, people,
                                                                            engine):
    plan = plan_at(session, people, engine, "ticket.created", MONDAY_NIGHT)
    ann = plan.receiver(ReceiverKind.EMPLOYEE, "ann")
    assert ann.channels == [Channel.BROWSER, Channel.EMAIL]  # nothing dropped
    assert ann.deferred.until == TUESDAY_7_BERLIN
    assert ann.quiet == "email deferred by quiet hours until 07:00 Europe/Berlin"
    bob = plan.receiver(ReceiverKind.EMPLOYEE, "bob").deferred  # the tenant's zone: UTC
    assert (bob.until, bob.label) == (datetime(2026, 12, 8, 7, 0, tzinfo=UTC), "07:00 UTC")
    [stored] = [r for r in plan.as_dict()["receivers"] if r["id"] == "ann"]
    assert stored["deferred_until"] == TUESDAY_7_BERLIN.isoformat()
    assert "email deferred by quiet hours until 07:00 Europe/Berlin" in render_plan(plan)


def test_the_tenants_zone_applies_to_users_without_one(session, people, engine):
    session.get(m.Tenant, people).default_time_zone = "America/New_York"
    evening = datetime(2026, 12, 8, 3, 30, tzinfo=UTC)  # Mon 22:30 NY, Tue 04:30 Berlin
    plan = plan_at(session, people, engine, "ticket.created", evening)
    assert plan.receiver(ReceiverKind.EMPLOYEE, "bob").quiet.endswith("07:00 America/New_York")
    assert plan.receiver(ReceiverKind.EMPLOYEE, "ann").quiet.endswith("07:00 Europe/Berlin")


def test_a_critical_event_type_bypasses_quiet_hours_and_says_so(session, people, engine):
    f.settings(session, people, "ann", quiet_hours=NIGHTS, advanced={
        "video_session.direct_call": {"channels": ["browser", "email"]}})  # no push device
    plan = plan_at(session, people, engine, "video_session.direct_call", MONDAY_NIGHT)
    ann = plan.receiver(ReceiverKind.EMPLOYEE, "ann")
    assert ann.deferred is None
    assert ann.quiet == "critical event type: quiet hours (until 07:00 Europe/Berlin) bypassed"


def test_routing_writes_the_feed_item_now_and_email_as_a_timer_for_the_windows_end(
        session, tenant, engine):
    now = utcnow()
    window = f.quiet_window_around(now, "Asia/Tokyo", 3600, 7200)
    f.employee(session, tenant, "ann", time_zone="Asia/Tokyo")
    f.employee(session, tenant, "cal")
    f.settings(session, tenant, "ann", quiet_hours=[window])
    f.settings(session, tenant, "cal", quiet_hours=[f.quiet_window_around(now, "UTC", 60, 60)],
               advanced={"all": {"channels": ["browser", "email"]}})
    f.template(session, tenant, "tpl", notification_receivers=[
        {"id": "g", "members": f.users("ann", "cal")}],
        call_participants=[{"id": "calls", "members": f.users("cal")}])
    ticket = f.event("ticket.created", tenant, subject={"template_id": "tpl"}, actor="x")
    call = f.event("video_session.direct_call", tenant, subject={"template_id": "tpl"},
                   actor="x")
    pks = [p.pk for p in publish(session, tenant, [ticket, call])]
    result = EventRouter(engine, TextCatalogue(), {}, batch=1).route(session, pks)  # these only
    assert sorted(result.routed) == sorted(pks)

    rows = {(r.event_pk, r.receiver_id, r.channel): r for r in session.scalars(
        select(m.Delivery).where(m.Delivery.tenant_id == tenant))}
    ann_mail = rows[(pks[0], "ann", "email")]
    assert ann_mail.status == DeliveryStatus.PENDING
    assert 7190 < (ann_mail.next_attempt_at - now).total_seconds() < 7201
    cal_mail = rows[(pks[0], "cal", "email")]
    assert result.later[Channel.EMAIL] == {ann_mail.id: ann_mail.next_attempt_at,
                                           cal_mail.id: cal_mail.next_attempt_at}
    assert ann_mail.id not in result.start[Channel.EMAIL]
    [line] = deliveries.history(session, [ann_mail])[ann_mail.id][1:]
    assert line["status"] == "pending"
    assert line["detail"] == f"email deferred by quiet hours until {window['to']} Asia/Tokyo"
    # the feed item is there at once, and cal's critical call is mailed now
    assert session.scalar(select(m.FeedItem.id).where(
        m.FeedItem.tenant_id == tenant, m.FeedItem.receiver_id == "ann")) is not None
    cal_call = rows[(pks[1], "cal", "email")]
    assert cal_call.next_attempt_at is None and cal_call.id in result.start[Channel.EMAIL]
