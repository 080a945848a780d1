"""A matched rule whose selector finds nobody says which selector and why (issue #18)."""

from __future__ import annotations

from router.directory.audience import DirectoryView
from router.routing.planner import RoutingPlan, plan_event
from tests import factories as f


def route(session, tenant, engine, etype, **kw) -> RoutingPlan:
    return plan_event(f.event(etype, tenant, **kw), DirectoryView(session, tenant), engine)


def nobody(plan: RoutingPlan) -> dict[str, str]:
    return {f"{n.rule} ({n.selector})": n.reason for n in plan.nobody}


def test_a_message_on_a_subject_the_directory_does_not_know_says_why_nobody_heard(
        session, tenant, engine):
    plan = route(session, tenant, engine, "ticket.message_added",
                 subject={"id": "T-404", "number": "#404"})
    assert plan.matched_rules and not plan.receivers and not plan.dropped
    unknown = "(the directory does not know ticket T-404)"
    assert nobody(plan) == {
        "ticket-notification-receivers (template_group: notification_receivers)":
            f"the subject has no template {unknown}",
        "service-case-participants (participants)": f"the subject has no participants {unknown}",
        "subject-creator (creator)": f"the subject names no creator {unknown}",
        "code-user-subscribers (subscribers)": f"no code user signed up for ticket T-404 {unknown}",
    }
    assert plan.as_dict()["nobody"][0] == {
        "rule": "ticket-notification-receivers",
        "selector": "template_group: notification_receivers",
        "reason": f"the subject has no template {unknown}"}


def test_a_template_without_the_group_and_an_empty_group_are_told_apart(session, tenant, engine):
    f.template(session, tenant, "no-groups")
    f.template(session, tenant, "empty", notification_receivers=[{"id": "sups", "members": []}])
    f.template(session, tenant, "strangers",
               notification_receivers=[{"id": "ghosts", "members": f.users("left-long-ago")}])
    reasons = {tpl: nobody(route(session, tenant, engine, "ticket.created",
                                 subject={"template_id": tpl}))
               ["ticket-notification-receivers (template_group: notification_receivers)"]
               for tpl in ("no-groups", "empty", "strangers")}
    assert reasons["no-groups"].startswith(
        "template no-groups has no notification_receivers group")
    assert reasons["empty"].startswith(
        "group sups (notification_receivers of template empty) has no members")
    assert reasons["strangers"].startswith("the members of group ghosts "
                                           "(notification_receivers of template strangers) "
                                           "are not employees in the directory")


def test_roles_nobody_holds_and_a_known_subject_say_so_without_the_unknown_subject_note(
        session, tenant, engine):
    f.employee(session, tenant, "only-tech", roles=["technician"])
    plan = route(session, tenant, engine, "code.paired", subject={"id": "QR-1"})
    assert nobody(plan) == {"code-admins (role: admin, moderator)":
                            "no user has the role admin, moderator"}


def test_a_selector_that_found_only_the_excluded_actor_says_so(session, tenant, engine):
    from router.ruleset.engine import RuleEngine
    from router.ruleset.rulefile import parse_ruleset

    ruleset = parse_ruleset([("r.yaml", """
events:
  ticket.created: {subject: ticket, title: New ticket}
rules:
  - id: not-to-myself
    when: {type: ticket.created}
    receivers: [{users: [ann]}]
    except: [actor]
""")])
    f.employee(session, tenant, "ann")
    plan = plan_event(f.event("ticket.created", tenant, actor="ann"),
                      DirectoryView(session, tenant), RuleEngine(ruleset))
    assert nobody(plan) == {"not-to-myself (users: ann)":
                            "found only ann, whom the rule leaves out (except: actor)"}


def test_selectors_that_found_someone_are_not_listed(session, tenant, engine):
    f.employee(session, tenant, "sup")
    f.template(session, tenant, "tpl",
               notification_receivers=[{"id": "g", "members": f.users("sup")}])
    plan = route(session, tenant, engine, "ticket.created",
                 subject={"template_id": "tpl", "creator_id": "sup", "participants": ["sup"]})
    assert [n.rule for n in plan.nobody] == ["code-user-subscribers"]
