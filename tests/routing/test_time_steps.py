"""Delay, cancel_on and escalate on the durable timer, routed on PostgreSQL: the rows a
route transaction writes, what a cancelling event skips, and when an escalation is moot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from router.core.enums import Channel, DeliveryStatus
from router.delivery import deliveries, feed, timers
from router.directory import directory
from router.directory.settings import SettingsIn
from router.routing.pipeline import EventRouter, publish
from router.routing.texts import TextCatalogue
from router.ruleset.engine import RuleEngine
from router.ruleset.rulefile import load_ruleset
from router.store import models as m
from router.store.models import utcnow
from tests import factories as f
from tests.ruleset.test_timing import TIMED, rules_with

ESCALATING = TIMED.replace("escalate: {after: 2h, to: [push]}", "").replace(
    "  ticket.closed:", """  ticket.urgent:
    {subject: ticket, title: Urgent, escalate: {after: 10m, to: [email]}}
  ticket.closed:""")


@pytest.fixture
def router(tmp_path):
    return EventRouter(RuleEngine(load_ruleset(rules_with(tmp_path, ESCALATING))),
                       TextCatalogue(), {})


@pytest.fixture
def ann(session, tenant):
    f.employee(session, tenant, "ann")
    return tenant


def route(s, router: EventRouter, tenant: str, etype: str, subject: str = "T-1", **kw):
    event = f.event(etype, tenant, subject={"id": subject, "creator_id": "ann"}, **kw)
    [stored] = publish(s, tenant, [event])
    return event.id, router.route(s, [stored.pk])


def rows_of(s, tenant: str, etype: str) -> list[m.Delivery]:
    return list(s.scalars(select(m.Delivery).join(m.EventRow, m.EventRow.pk == m.Delivery.event_pk)
                          .where(m.Delivery.tenant_id == tenant, m.EventRow.type == etype)))


def test_a_delayed_email_is_a_pending_row_due_after_its_delay(session, ann, router):
    _, result = route(session, router, ann, "ticket.reminder")
    [email] = rows_of(session, ann, "ticket.reminder")
    assert (email.channel, email.status) == (Channel.EMAIL, DeliveryStatus.PENDING)
    assert email.next_attempt_at == email.created_at + timedelta(minutes=15)
    assert result.later[Channel.EMAIL] == {email.id: email.next_attempt_at}
    assert not result.start.get(Channel.EMAIL)  # not started now: enqueued for its due time
    assert deliveries.claim(session, [email.id], Channel.EMAIL, 30) == []
    assert timers.planned_line(email.content, "email").startswith("planned: email delayed 15m "
                                                                  "until ")


def test_a_cancelling_event_skips_the_pending_delayed_rows_of_its_subject_only(
        session, ann, router):
    route(session, router, ann, "ticket.reminder", subject="T-1")
    route(session, router, ann, "ticket.reminder", subject="T-2")
    closed_id, _ = route(session, router, ann, "ticket.closed", subject="T-1")
    by_subject = {r.content["cancel_key"]: r for r in rows_of(session, ann, "ticket.reminder")}
    cancelled, other = by_subject["ticket:T-1"], by_subject["ticket:T-2"]
    assert cancelled.status == DeliveryStatus.SKIPPED and other.status == DeliveryStatus.PENDING
    [line] = deliveries.history(session, [cancelled])[cancelled.id][1:]
    assert line["detail"] == f"cancelled by ticket.closed (event {closed_id})"
    plan = session.scalar(select(m.EventRow.plan).where(m.EventRow.event_id == closed_id))
    assert "cancelled 1 delayed deliveries on this subject" in plan["notes"]


def test_a_cancelling_event_of_another_tenant_cancels_nothing(session, ann, router):
    route(session, router, ann, "ticket.reminder")
    other = f.new_tenant(session).id
    f.employee(session, other, "ann")
    route(session, router, other, "ticket.closed")
    [email] = rows_of(session, ann, "ticket.reminder")
    assert email.status == DeliveryStatus.PENDING


def test_an_escalation_is_moot_once_its_feed_item_was_read(session, ann, router):
    route(session, router, ann, "ticket.urgent")
    [email] = rows_of(session, ann, "ticket.urgent")
    assert email.feed_item_id is not None
    assert email.next_attempt_at == email.created_at + timedelta(minutes=10)
    assert timers.moot_escalations(session, [email]) == {}  # unread: it goes out
    session.execute(update(m.FeedItem).where(m.FeedItem.id == email.feed_item_id)
                    .values(unread=False, read_at=utcnow()))
    [reason] = timers.moot_escalations(session, [email]).values()
    assert reason.startswith("not escalated: read at ")


def test_an_escalation_is_moot_when_the_code_notifications_were_cleared(session, ann, router):
    route(session, router, ann, "ticket.urgent")
    [email] = rows_of(session, ann, "ticket.urgent")
    item = session.get(m.FeedItem, email.feed_item_id)
    item.code_id = "QR-1"
    session.add(m.CodeState(tenant_id=ann, code_id="QR-1",
                            notifications_cutoff=item.updated_at + timedelta(seconds=1)))
    session.flush()
    [reason] = timers.moot_escalations(session, [email]).values()
    assert reason.startswith("not escalated: the code's notifications were cleared")


def test_explain_shows_the_time_steps_and_what_an_event_cancels(session, ann, router):
    _, result = route(session, router, ann, "ticket.closed")
    assert result.routed
    plan = session.scalar(select(m.EventRow.plan).where(m.EventRow.type == "ticket.closed",
                                                        m.EventRow.tenant_id == ann))
    assert ("cancels the pending delayed deliveries of ticket.reminder on the same subject"
            in plan["notes"])
    route(session, router, ann, "ticket.reminder")
    plan = session.scalar(select(m.EventRow.plan).where(m.EventRow.type == "ticket.reminder",
                                                        m.EventRow.tenant_id == ann))
    assert [t["describe"] for t in plan["timing"]] == [
        "email delayed 15m unless ticket.closed comes first"]


def test_a_delayed_email_does_not_hold_back_the_feed_item(session, ann, router):
    route(session, router, ann, "ticket.reminder")
    [counts] = feed.unread_counts(session, ann, [("employee", "ann")]).values()
    assert counts.unread == 1


def test_a_held_channel_the_receiver_switched_off_writes_no_timer(session, ann, router):
    directory.put_settings(session, ann, "ann", SettingsIn(email=False))
    _, result = route(session, router, ann, "ticket.reminder")
    assert rows_of(session, ann, "ticket.reminder") == [] and not result.later


def test_a_delayed_email_inside_quiet_hours_is_due_when_the_later_of_the_two_ends(
        session, ann, router):
    """A 15-minute delay for a receiver whose quiet hours end in four hours: the quiet end
    wins, and the history says both what the step waits for and that quiet hours hold it."""
    f.employee(session, ann, "ann", time_zone="Europe/Berlin")
    window = f.quiet_window_around(utcnow(), "Europe/Berlin", 60, 4 * 3600)
    directory.put_settings(session, ann, "ann", SettingsIn.model_validate({"quiet_hours": [window]}))
    route(session, router, ann, "ticket.reminder")
    [email] = rows_of(session, ann, "ticket.reminder")
    quiet_end = email.created_at + timedelta(hours=4)
    assert abs((email.next_attempt_at - quiet_end).total_seconds()) < 2
    assert timers.planned_line(email.content, "email").startswith("planned: email delayed 15m")
    details = [h["detail"] for h in deliveries.history(session, [email])[email.id]]
    assert any(d.startswith("email deferred by quiet hours until ") for d in details)
