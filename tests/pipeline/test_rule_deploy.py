"""A rule set deploy followed by every process of a real deployment (PostgreSQL,
Redis, one `herald serve`, two `herald worker`), in a schema of its own."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from router.store import models as m
from router.store.db import Database
from tests.conftest import RULES, own_schema
from tests.harness import Client, Herald, wait_until
from tests.pipeline.test_service_e2e import seed_directory, ticket

pytestmark = pytest.mark.slow
PROCESSES = ("api", "w1", "w2")
TECHNICIANS = ('rules:\n  - id: tickets-to-technicians\n    when: {type: {prefix: "ticket."}}\n'
               '    receivers: [{role: [technician]}]\n')


def swapped_at(herald: Herald, name: str, version: int) -> datetime | None:
    for line in herald.log(name).splitlines():
        if '"rules.swapped"' in line and json.loads(line).get("version") == version:
            stamp = datetime.strptime(json.loads(line)["time"], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.astimezone(UTC)  # the log's local time
    return None


def follow_delays(herald: Herald, db: Database, version: int) -> dict[str, float]:
    """Seconds from the deploy's commit to `rules.swapped` in each process's log."""
    with db.session() as s:
        deployed = s.get(m.RuleVersion, version).deployed_at  # type: ignore[union-attr]
    seen = wait_until(lambda: all(swapped_at(herald, p, version) for p in PROCESSES), 10, 0.1,
                      what=f"every process on version {version}") and {
        p: swapped_at(herald, p, version) for p in PROCESSES}
    return {p: round((at - deployed).total_seconds(), 3) for p, at in seen.items()}


def routed(db: Database, tenant: str, event_ids: list[str]) -> dict[str, int | None]:
    with db.session() as s:
        rows = s.execute(select(m.EventRow.event_id, m.EventRow.rules_version).where(
            m.EventRow.tenant_id == tenant, m.EventRow.event_id.in_(event_ids),
            m.EventRow.status == "routed")).all()
    return dict(rows)  # type: ignore[arg-type]


def technician_items(db: Database, tenant: str) -> list[str]:
    with db.session() as s:
        return sorted(s.scalars(select(m.FeedItem.subject_id).where(
            m.FeedItem.tenant_id == tenant, m.FeedItem.receiver_id == "tech1")))


def routing_workers(herald: Herald, since: dict[str, int]) -> set[str]:
    """The workers that logged a route batch with routed events after `since` (log sizes)."""
    return {w for w in ("w1", "w2") for line in herald.log(w)[since[w]:].splitlines()
            if '"route.batch"' in line and json.loads(line)["routed"] > 0}


def publish_until_both_workers_route(herald: Herald, client: Client, tag: str) -> list[str]:
    since = {w: len(herald.log(w)) for w in ("w1", "w2")}
    ids: list[str] = []
    for i in range(60):
        ids.append(f"{tag}-{i}")
        assert client.post("/v1/events", json=ticket(ids[-1], id=ids[-1])).status_code == 202
        time.sleep(0.15)
        if i >= 5 and routing_workers(herald, since) == {"w1", "w2"}:
            break
    assert routing_workers(herald, since) == {"w1", "w2"}
    return ids


@pytest.fixture
def deployment(tmp_path):
    with own_schema() as url:
        herald = Herald(tmp_path, database_url=url, smtp={"port": 1})
        assert herald.cli("migrate").returncode == 0  # the shipped rules become version 1
        created = herald.cli("tenants", "create", "Rules Co", "--id", "rules-co")
        key = next(line.split()[2] for line in created.stdout.splitlines()
                   if line.startswith("API key"))
        herald.start_api()
        herald.start_worker("w1")
        herald.start_worker("w2")
        db = Database(url)
        try:
            with Client(herald.url, key) as client:
                seed_directory(client)
                client.put("/v1/users/tech1", json={"id": "tech1", "roles": ["technician"]})
                yield herald, client, db
        finally:
            herald.stop()
            db.dispose()


def test_every_process_follows_a_deploy_a_rollback_and_ignores_a_broken_deploy(
        deployment, tmp_path):
    herald, client, db = deployment
    new_rules = tmp_path / "new-rules"
    shutil.copytree(RULES, new_rules)
    (new_rules / "extra.yaml").write_text(TECHNICIANS)

    done = herald.cli("rules", "deploy", str(new_rules), "-m", "technicians hear of tickets")
    assert done.returncode == 0 and "version 2 deployed" in done.stdout, done.stderr
    deploy_delays = follow_delays(herald, db, 2)
    ids = publish_until_both_workers_route(herald, client, "after-deploy")
    wait_until(lambda: len(routed(db, "rules-co", ids)) == len(ids), 30, what="routing")
    assert set(routed(db, "rules-co", ids).values()) == {2}
    assert technician_items(db, "rules-co") == sorted(ids)
    assert client.activity(ids[0])["rules_version"] == 2
    explained = client.post("/v1/events:explain", json=ticket("x")).json()
    assert explained["rules_version"] == 2
    assert "tech1" in {r["id"] for r in explained["receivers"]}
    assert "tech1" not in {r["id"] for r in client.post(
        "/v1/events:explain?rules_version=1", json=ticket("x")).json()["receivers"]}

    back = herald.cli("rules", "rollback", "1")
    assert back.returncode == 0 and "version 3 (the rules of version 1)" in back.stdout
    rollback_delays = follow_delays(herald, db, 3)
    client.post("/v1/events", json=ticket("after-rollback", id="after-rollback"))
    wait_until(lambda: routed(db, "rules-co", ["after-rollback"]), 30, what="routing")
    assert routed(db, "rules-co", ["after-rollback"]) == {"after-rollback": 3}

    (new_rules / "extra.yaml").write_text(TECHNICIANS.replace("type:", "typ:"))
    logs = {p: len(herald.log(p)) for p in PROCESSES}
    broken = herald.cli("rules", "deploy", str(new_rules))
    assert broken.returncode == 1
    assert f"{new_rules}/extra.yaml:3:12: unknown field path 'typ'" in broken.stderr
    assert "version 3 stays in force" in broken.stderr
    assert herald.cli("rules", "history").stdout.split()[0] == "3"
    client.post("/v1/events", json=ticket("after-broken", id="after-broken"))
    wait_until(lambda: routed(db, "rules-co", ["after-broken"]), 30, what="routing")
    assert routed(db, "rules-co", ["after-broken"]) == {"after-broken": 3}
    assert technician_items(db, "rules-co") == sorted(ids)
    assert all("rules.swapped" not in herald.log(p)[logs[p]:] for p in PROCESSES)
    print(f"\nseconds from deploy to rules.swapped: deploy {deploy_delays}, "
          f"rollback {rollback_delays}")
    assert max(deploy_delays.values()) < 2 and max(rollback_delays.values()) < 2
