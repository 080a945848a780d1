"""Every receiver fact of DESIGN §1-§2, routed by the shipped rules on PostgreSQL."""

from __future__ import annotations

import pytest

from router.core.enums import Channel, MemberKind, ReceiverKind, Strategy
from router.directory.audience import DirectoryView
from router.routing.planner import RoutingPlan, plan_event
from tests import factories as f

PUSH_SUB = {"endpoint": "https://push.example/abc",
            "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22}}


def route(session, tenant, engine, etype, **kw) -> RoutingPlan:
    return plan_event(f.event(etype, tenant, **kw), DirectoryView(session, tenant), engine)


def ids(plan: RoutingPlan, kind: ReceiverKind | None = None) -> set[str]:
    return {r.id for r in plan.receivers if kind is None or r.kind == kind}


@pytest.fixture
def org(session, tenant):
    """A tenant with a ticket template whose notification receivers are two groups."""
    for uid in ("sup1", "sup2", "dep1", "team1", "other", "creator", "offer1", "call1", "call2"):
        f.employee(session, tenant, uid)
    f.unit(session, tenant, MemberKind.DEPARTMENT, "support", ["dep1"])
    f.unit(session, tenant, MemberKind.TEAM, "night", ["team1"])
    f.template(session, tenant, "tpl", notification_receivers=[
        {"id": "default", "members": f.users("sup1") + [{"kind": "department", "id": "support"}]},
        {"id": "escalation", "members": f.users("sup2") + [{"kind": "team", "id": "night"}]},
    ], offer_receivers=[{"id": "fleet", "members": f.users("offer1")}],
        call_participants=[{"id": "calls", "members": f.users("call1", "call2")}])
    return tenant


def test_ticket_event_reaches_default_group_expanded_and_creator(session, org, engine):
    plan = route(session, org, engine, "ticket.created",
                 subject={"template_id": "tpl", "creator_id": "creator"})
    assert ids(plan) == {"sup1", "dep1", "creator"}
    creator = plan.receiver(ReceiverKind.EMPLOYEE, "creator")
    assert [r.rule for r in creator.reasons] == ["subject-creator"]


def test_creation_flow_group_wins_over_default_group(session, org, engine):
    plan = route(session, org, engine, "ticket.status_changed",
                 subject={"template_id": "tpl", "group": "escalation"})
    assert ids(plan) == {"sup2", "team1"}


def test_offer_created_reaches_offer_receivers_and_supervisors(session, org, engine):
    plan = route(session, org, engine, "ticket.offer_created", subject={"template_id": "tpl"})
    assert ids(plan) == {"sup1", "dep1", "offer1"}
    assert "offer1" not in ids(route(session, org, engine, "ticket.created",
                                     subject={"template_id": "tpl"}))


def test_service_case_participants_hear_about_their_case(session, org, engine):
    plan = route(session, org, engine, "ticket.message_added",
                 subject={"template_id": "tpl", "participants": ["offer1"]})
    assert "offer1" in ids(plan)


def test_video_requests_and_direct_calls_reach_call_participants(session, org, engine):
    for etype in ("video_session.requested", "video_session.direct_call"):
        plan = route(session, org, engine, etype, subject={"template_id": "tpl"})
        assert ids(plan) == {"call1", "call2"}
    confirmed = route(session, org, engine, "video_session.confirmed",
                      subject={"template_id": "tpl", "creator_id": "creator"})
    assert ids(confirmed) == {"creator"}


def test_direct_call_default_is_first_success_over_browser_then_push(session, org, engine):
    plan = route(session, org, engine, "video_session.direct_call", subject={"template_id": "tpl"})
    call1 = plan.receiver(ReceiverKind.EMPLOYEE, "call1")
    assert call1.strategy == Strategy.FIRST_SUCCESS
    assert call1.channels == [Channel.BROWSER]  # push dropped: nothing registered
    assert any(d.channel == Channel.PUSH and d.id == "call1" for d in plan.dropped)


def test_code_events_reach_every_admin_and_moderator(session, tenant, engine):
    f.employee(session, tenant, "adm", roles=["admin"])
    f.employee(session, tenant, "mod", roles=["moderator", "technician"])
    f.employee(session, tenant, "tech", roles=["technician"])
    for etype in ("code.paired", "code.deactivated"):
        assert ids(route(session, tenant, engine, etype)) == {"adm", "mod"}


def test_customers_of_the_subject_org_receive_while_their_setting_is_on(session, tenant, engine):
    f.customer(session, tenant, "c1", org="org1")
    f.customer(session, tenant, "c2", org="org1")
    f.customer(session, tenant, "c3", org="org2")
    f.settings(session, tenant, "c2", customer_notifications=False)
    plan = route(session, tenant, engine, "ticket.created", subject={"customer_org_id": "org1"})
    assert ids(plan, ReceiverKind.CUSTOMER) == {"c1"}
    assert any(d.id == "c2" and "customer_notifications" in d.setting for d in plan.dropped)


def test_code_user_hears_only_about_the_subject_they_signed_up_for(session, tenant, engine):
    f.subscription(session, tenant, "cu1", "T-9", email="anon@example.com")
    f.subscription(session, tenant, "cu2", "T-other", email="x@example.com",
                   push_subscription=PUSH_SUB)
    plan = route(session, tenant, engine, "ticket.status_changed", subject={"id": "T-9"})
    assert ids(plan, ReceiverKind.CODE_USER) == {"cu1"}
    assert plan.receiver(ReceiverKind.CODE_USER, "cu1").channels == [Channel.EMAIL]


def test_internal_ticket_never_reaches_code_users(session, tenant, engine):
    f.subscription(session, tenant, "cu1", "T-9", email="anon@example.com")
    plan = route(session, tenant, engine, "ticket.status_changed",
                 subject={"id": "T-9", "visibility": "internal"})
    assert ids(plan, ReceiverKind.CODE_USER) == set()
    assert any(d.id == "cu1" and "internal" in d.setting for d in plan.dropped)


def test_code_user_language_is_the_subscription_language(session, tenant, engine):
    f.subscription(session, tenant, "cu1", "T-9", email="anon@example.com", language="de")
    plan = route(session, tenant, engine, "ticket.created", subject={"id": "T-9"})
    assert plan.receiver(ReceiverKind.CODE_USER, "cu1").language == "de"


def test_origin_me_is_dropped_by_default_and_kept_when_the_user_wants_it(session, org, engine):
    plan = route(session, org, engine, "ticket.created", actor="creator",
                 subject={"template_id": "tpl", "creator_id": "creator"})
    assert "creator" not in ids(plan)
    assert any(d.id == "creator" and "origin" in d.reason for d in plan.dropped)
    f.settings(session, org, "creator", advanced={"all": {"channels": ["browser"],
                                                          "origin": ["me", "others"]}})
    plan = route(session, org, engine, "ticket.created", actor="creator",
                 subject={"template_id": "tpl", "creator_id": "creator"})
    assert plan.receiver(ReceiverKind.EMPLOYEE, "creator").channels == [Channel.BROWSER]


def test_switch_off_wins_over_advanced_rows(session, org, engine):
    f.settings(session, org, "sup1", email=False,
               advanced={"ticket.created": {"channels": ["email", "browser"]}})
    plan = route(session, org, engine, "ticket.created", subject={"template_id": "tpl"})
    assert plan.receiver(ReceiverKind.EMPLOYEE, "sup1").channels == [Channel.BROWSER]
    assert any(d.id == "sup1" and d.setting == "email = off" for d in plan.dropped)


def test_strategy_precedence_event_row_then_all_row_then_rule_default(session, org, engine):
    f.settings(session, org, "sup1", advanced={
        "ticket.created": {"channels": ["email", "browser"], "strategy": "first_success"},
        "all": {"channels": ["browser"], "strategy": "all"}})
    created = route(session, org, engine, "ticket.created", subject={"template_id": "tpl"})
    sup1 = created.receiver(ReceiverKind.EMPLOYEE, "sup1")
    assert (sup1.channels, sup1.strategy) == ([Channel.EMAIL, Channel.BROWSER],
                                              Strategy.FIRST_SUCCESS)
    changed = route(session, org, engine, "ticket.status_changed", subject={"template_id": "tpl"})
    sup1 = changed.receiver(ReceiverKind.EMPLOYEE, "sup1")
    assert (sup1.channels, sup1.strategy) == ([Channel.BROWSER], Strategy.ALL)
    dep1 = changed.receiver(ReceiverKind.EMPLOYEE, "dep1")
    assert dep1.prefs_source == "rule-file default 'all'"
    assert dep1.channels == [Channel.BROWSER, Channel.EMAIL]  # push: nothing registered


def test_inactive_users_are_never_reached(session, org, engine):
    f.employee(session, org, "sup1", active=False)
    plan = route(session, org, engine, "ticket.created", subject={"template_id": "tpl"})
    assert "sup1" not in ids(plan)
    assert any(d.id == "sup1" and "inactive" in d.reason for d in plan.dropped)


def test_receiver_reached_by_several_rules_appears_once_with_every_reason(session, org, engine):
    plan = route(session, org, engine, "ticket.created",
                 subject={"template_id": "tpl", "creator_id": "sup1", "participants": ["sup1"]})
    assert [r.id for r in plan.receivers].count("sup1") == 1
    rules = {r.rule for r in plan.receiver(ReceiverKind.EMPLOYEE, "sup1").reasons}
    assert rules == {"ticket-notification-receivers", "subject-creator",
                     "service-case-participants"}


def test_stored_subject_fills_fields_the_event_leaves_out(session, org, engine):
    from router.directory import directory as d
    d.put_subject(session, org, d.SubjectIn(kind="ticket", id="T-5", number="#5",
                                            template_id="tpl", creator_id="creator",
                                            visibility="internal", participants=["offer1"]))
    f.subscription(session, org, "cu1", "T-5", email="anon@example.com")
    plan = route(session, org, engine, "ticket.created", subject={"id": "T-5"})
    assert ids(plan) == {"sup1", "dep1", "creator", "offer1"}


def test_employee_language_falls_back_to_tenant_default(session, engine):
    tenant = f.new_tenant(session, language="de").id
    f.employee(session, tenant, "adm", roles=["admin"])
    f.employee(session, tenant, "fr", roles=["admin"], language="fr")
    plan = route(session, tenant, engine, "code.paired")
    assert plan.receiver(ReceiverKind.EMPLOYEE, "adm").language == "de"
    assert plan.receiver(ReceiverKind.EMPLOYEE, "fr").language == "fr"


def test_another_tenants_directory_is_invisible(session, org, engine):
    other = f.new_tenant(session).id
    f.employee(session, other, "adm", roles=["admin"])
    assert ids(route(session, org, engine, "code.paired")) == set()
