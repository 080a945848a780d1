"""The plan stored with a routed event groups receivers that share everything but who
they are; the activity view and explain still show a dict per receiver (decision "A
stored plan groups its receivers")."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from router.core.enums import Channel, ReceiverKind, Strategy
from router.directory.quiet import Deferral
from router.routing.planner import (
    Drop,
    PlannedReceiver,
    Reason,
    RoutingPlan,
    expand,
    receiver_count,
)

GROUP = Reason("ticket-notification-receivers", "template_group: notification_receivers")
CREATOR = Reason("subject-creator", "creator")
SEVEN = Deferral(datetime(2026, 12, 8, 6, 0, tzinfo=UTC), "07:00 Europe/Berlin")


def plan_of(admins: int) -> RoutingPlan:
    plan = RoutingPlan("e-1", "ticket.created", [{"id": GROUP.rule, "description": ""}])
    for i in range(admins):
        plan.receivers.append(PlannedReceiver(
            ReceiverKind.EMPLOYEE, f"a{i}", f"Admin {i}", "en", [Channel.BROWSER], Strategy.ALL,
            [GROUP], "rule default", f"a{i}@example.com" if i % 2 else None))
    plan.receivers.append(PlannedReceiver(
        ReceiverKind.EMPLOYEE, "ann", "Ann", "de", [Channel.BROWSER, Channel.EMAIL],
        Strategy.FIRST_SUCCESS, [GROUP, CREATOR], "own settings", "ann@example.com",
        SEVEN, "email deferred by quiet hours until 07:00 Europe/Berlin"))
    plan.receivers.append(PlannedReceiver(
        ReceiverKind.CUSTOMER, "cust1", "Cust", "en", [Channel.BROWSER], Strategy.ALL, [GROUP]))
    inactive = (Drop("the user is inactive", "directory: active = false"),)
    plan.drops += [(ReceiverKind.EMPLOYEE, f"x{i}", inactive) for i in range(3)]
    plan.drops.append((ReceiverKind.EMPLOYEE, "ann", (Drop("no push target", "push", Channel.PUSH),)))
    return plan


def test_receivers_alike_are_stored_once_with_their_ids_names_and_addresses_side_by_side():
    stored = plan_of(1000).stored()
    assert [len(g["ids"]) for g in stored["receiver_groups"]] == [1000, 1, 1]
    assert [len(g["ids"]) for g in stored["dropped_groups"]] == [3, 1]
    assert receiver_count(stored) == 1002
    per_receiver = len(json.dumps(expand(stored)))
    assert len(json.dumps(stored)) < per_receiver / 3  # what PostgreSQL has to take in


def test_the_activity_view_gets_every_receiver_back_with_all_it_was_planned_with():
    plan = expand(plan_of(3).stored())
    by_id = {r["id"]: r for r in plan["receivers"]}
    assert list(by_id) == ["a0", "a1", "a2", "ann", "cust1"]
    assert by_id["a1"] == {
        "kind": "employee", "id": "a1", "name": "Admin 1", "language": "en",
        "channels": ["browser"], "strategy": "all",
        "reasons": [{"rule": GROUP.rule, "selector": GROUP.selector}],
        "prefs_source": "rule default", "email": "a1@example.com"}
    assert by_id["a0"]["email"] is None
    assert by_id["ann"]["quiet"] == "email deferred by quiet hours until 07:00 Europe/Berlin"
    assert by_id["ann"]["deferred_until"] == SEVEN.until.isoformat()
    assert by_id["ann"]["strategy"] == "first_success" and len(by_id["ann"]["reasons"]) == 2
    assert by_id["cust1"]["kind"] == "customer"
    assert {(d["id"], d["channel"]) for d in plan["dropped"]} == {
        ("x0", None), ("x1", None), ("x2", None), ("ann", "push")}


def test_a_plan_stored_before_grouping_reads_as_it_was():
    old = {"event_id": "e-0", "receivers": [{"kind": "employee", "id": "a"}], "dropped": []}
    assert expand(old) == old
    assert receiver_count(old) == 1 and receiver_count(None) == 0
