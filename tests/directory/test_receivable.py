"""Which event types a user can get (the rows of their preference table): those some
rule could send them, judged from the rule's `when` on the type and subject kind and from
whether its selectors can name a user of their kind, id and roles."""

from __future__ import annotations

import shutil
from pathlib import Path

from router.core.enums import UserKind
from router.directory.settings import UserFacts, receivable
from router.ruleset.rulefile import load_ruleset
from tests.conftest import RULES

RULES_BODY = """
rules:
  - id: supervisors
    when: {type: {prefix: "ticket."}}
    receivers: [{template_group: notification_receivers}]
  - id: named-people
    when: {type: task.completed}
    receivers: [{users: [ivo]}]
  - id: code-admins
    when: {subject.kind: code}
    receivers: [{role: [admin]}]
  - id: customers
    when: {all: [{subject.kind: video_session}, {subject.customer_org_id: {exists: true}}]}
    receivers: [customer_org]
  - id: visitors
    when: {subject.kind: device}
    receivers: [subscribers]
"""


def types_for(tmp_path: Path, kind: UserKind, user_id: str = "u1", *roles: str) -> set[str]:
    shutil.copy(Path(RULES) / "catalogue.yaml", tmp_path / "catalogue.yaml")
    (tmp_path / "rules.yaml").write_text(RULES_BODY, encoding="utf-8")
    ruleset = load_ruleset(tmp_path)
    return {spec.type for spec in receivable(ruleset, UserFacts(kind, user_id, frozenset(roles)))}


def test_an_employee_gets_what_their_groups_names_and_roles_can_bring(tmp_path):
    tickets = {"ticket.created", "ticket.status_changed", "ticket.message_added",
               "ticket.assigned", "ticket.offer_created", "ticket.offer_accepted"}
    assert types_for(tmp_path, UserKind.EMPLOYEE) == tickets
    assert types_for(tmp_path, UserKind.EMPLOYEE, "ivo") == tickets | {"task.completed"}
    assert types_for(tmp_path, UserKind.EMPLOYEE, "u1", "admin") == tickets | {
        "code.paired", "code.deactivated"}


def test_a_customer_gets_their_organisations_types_and_nobody_gets_the_code_users_only(tmp_path):
    assert types_for(tmp_path, UserKind.CUSTOMER) == {
        "video_session.requested", "video_session.confirmed", "video_session.cancelled",
        "video_session.direct_call"}
    assert "device.created" not in types_for(tmp_path, UserKind.EMPLOYEE, "u1", "admin")


def test_with_the_shipped_rules_only_admins_and_moderators_get_code_and_device_types(ruleset):
    plain = receivable(ruleset, UserFacts(UserKind.EMPLOYEE, "u1", frozenset({"technician"})))
    admin = receivable(ruleset, UserFacts(UserKind.EMPLOYEE, "u1", frozenset({"moderator"})))
    assert [s.type for s in admin] == list(ruleset.events)  # catalogue order
    assert {s.type for s in admin} - {s.type for s in plain} == {
        "code.paired", "code.deactivated", "device.created"}
