"""Who a selector reaches (DESIGN §1), asked of one tenant's directory: template groups with
their departments and teams, roles, an organisation's customers, a subject's participants and
code-user sign-ups; the batch prefetch answers exactly as the questions asked one by one."""

from __future__ import annotations

import pytest

from router.core.enums import MemberKind, SubjectKind, Submodule
from router.directory import directory as d
from router.directory.audience import DirectoryView
from router.store import models as m
from tests import factories as f

TICKETS = Submodule.NOTIFICATION_RECEIVERS


@pytest.fixture
def acme(session, tenant):
    """Supervisors in two ticket groups; `dana` is in the default group both by name and
    through her department."""
    for uid in ("dana", "sam", "tess", "nick"):
        f.employee(session, tenant, uid)
    f.unit(session, tenant, MemberKind.DEPARTMENT, "support", ["dana", "sam"])
    f.unit(session, tenant, MemberKind.TEAM, "night", ["tess"])
    f.template(session, tenant, "tpl", notification_receivers=[
        {"id": "first", "members": f.users("dana") + [{"kind": "department", "id": "support"}]},
        {"id": "escalation", "members": [{"kind": "team", "id": "night"}] + f.users("nick")},
    ])
    return tenant


def view(session, tenant) -> DirectoryView:
    return DirectoryView(session, tenant)


def test_a_group_reaches_its_people_and_the_people_of_its_departments_and_teams_once(session, acme):
    directory = view(session, acme)
    assert directory.group_members("tpl", TICKETS, "first") == ["dana", "sam"]
    assert sorted(directory.group_members("tpl", TICKETS, "escalation")) == ["nick", "tess"]


def test_the_responsible_group_wins_else_the_first_group_and_the_pick_says_why(session, acme):
    directory = view(session, acme)
    wanted = directory.pick_group("tpl", TICKETS, "escalation")
    assert (wanted.group_id, wanted.note) == ("escalation", "responsible group escalation")
    fallback = directory.pick_group("tpl", TICKETS, "no-such-group")
    assert (fallback.group_id, fallback.note) == ("first", "default group first")
    none = directory.pick_group("tpl", Submodule.OFFER_RECEIVERS, None)
    assert none.group_id is None and "has no offer_receivers group" in none.note


def test_a_role_selector_reaches_every_holder_once_and_no_one_else(session, tenant):
    f.employee(session, tenant, "ada", roles=["admin", "moderator"])
    f.employee(session, tenant, "mo", roles=["moderator"])
    f.employee(session, tenant, "tec", roles=["technician"])
    assert sorted(view(session, tenant).role_members(("admin", "moderator"))) == ["ada", "mo"]


def test_an_organisations_customers_are_its_customer_logins_only(session, tenant):
    f.customer(session, tenant, "c1", "org-1")
    f.customer(session, tenant, "c2", "org-1")
    f.customer(session, tenant, "c3", "org-2")
    d.put_user(session, tenant, d.UserIn(id="staff", kind="employee", org_id="org-1"))
    assert sorted(view(session, tenant).org_customers("org-1")) == ["c1", "c2"]


def test_only_active_sign_ups_for_that_very_subject_are_its_code_users(session, tenant):
    f.subscription(session, tenant, "cu1", "T-1", email="one@example.com")
    f.subscription(session, tenant, "cu2", "T-1", email="two@example.com")
    f.subscription(session, tenant, "cu3", "T-2", email="three@example.com")
    f.subscription(session, tenant, "cu4", "T-1", kind="video_session", email="four@example.com")
    session.get(m.Subscription, (tenant, "cu2")).active = False  # unsubscribed
    session.flush()
    assert [s.id for s in view(session, tenant).subscriptions("ticket", "T-1")] == ["cu1"]
    f.subscription(session, tenant, "cu2", "T-1", email="two@example.com")  # signs up again
    assert [s.id for s in view(session, tenant).subscriptions("ticket", "T-1")] == ["cu1", "cu2"]


def test_the_batch_prefetch_gives_the_same_answers_as_asking_one_by_one(session, acme):
    for sid, creator, participants in (("T-1", "dana", ["sam", "tess"]), ("T-2", None, [])):
        d.put_subject(session, acme, d.SubjectIn(kind=SubjectKind.TICKET, id=sid, number=sid,
                                                 creator_id=creator, participants=participants))
    f.subscription(session, acme, "cu1", "T-1", email="one@example.com")
    f.subscription(session, acme, "cu2", "T-3", email="two@example.com")  # no stored subject
    f.subscription(session, acme, "cu3", "T-1", email="three@example.com")
    session.get(m.Subscription, (acme, "cu3")).active = False  # unsubscribed
    session.flush()
    keys = [("ticket", "T-1"), ("ticket", "T-2"), ("ticket", "T-3"), ("ticket", "T-404")]

    def answers(directory: DirectoryView) -> list[tuple]:
        return [(getattr(directory.subject(*k), "creator_id", None),
                 sorted(directory.participants(*k)),
                 [s.id for s in directory.subscriptions(*k)]) for k in keys]

    batch = view(session, acme)
    batch.prefetch_subjects(keys)
    assert answers(batch) == answers(view(session, acme)) == [
        ("dana", ["sam", "tess"], ["cu1"]), (None, [], []), (None, [], ["cu2"]), (None, [], [])]

