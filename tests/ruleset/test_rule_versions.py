"""Rule set versions: the store on PostgreSQL, the engine swap, a process following."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from router.core.enums import RulesChange
from router.core.errors import NotFound, RuleFileError
from router.ruleset import ruleversions as rv
from router.ruleset.engine import RuleEngine
from router.ruleset.rulefile import load_ruleset
from router.ruleset.rulesync import RuleSync
from router.store import models as m
from router.store.db import Database
from tests.conftest import RULES, own_schema

TECHNICIANS = ('rules:\n  - id: tickets-to-technicians\n    when: {type: {prefix: "ticket."}}\n'
               '    receivers: [{role: [technician]}]\n')
TICKET = {"id": "e1", "type": "ticket.created", "tenant": "t",
          "subject": {"kind": "ticket", "id": "T-1"}}


@pytest.fixture(scope="module")
def store() -> Iterator[Database]:
    with own_schema() as url:
        db = Database(url)
        yield db
        db.dispose()


@pytest.fixture
def db(store: Database) -> Database:
    with store.session() as s:
        s.execute(delete(m.RuleVersion))
    return store


def rules_dir(tmp_path: Path, extra: str | None = None) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target, dirs_exist_ok=True)
    if extra is not None:
        (target / "extra.yaml").write_text(extra)
    return target


def deploy(db: Database, path: Path, message: str = "") -> rv.Deployed:
    source, _ = rv.RuleSource.from_path(path)
    with db.session() as s:
        return rv.deploy(s, source, RulesChange.DEPLOY, message=message, who="ana")


def test_a_deploy_stores_every_file_and_is_in_force_at_once(db, tmp_path):
    first = deploy(db, rules_dir(tmp_path), "shipped")
    second = deploy(db, rules_dir(tmp_path, TECHNICIANS), "technicians hear of tickets")
    with db.session() as s:
        row = rv.get(s, 2)
        assert (first.version, second.version, rv.active_version(s)) == (1, 2, 2)
    assert [f["name"] for f in row.files] == ["catalogue.yaml", "extra.yaml", "platform.yaml"]
    assert row.files[1]["text"] == TECHNICIANS
    pairs = [[f["name"], f["text"]] for f in row.files]
    assert row.content_hash == hashlib.sha256(json.dumps(pairs).encode()).hexdigest()
    assert (row.message, row.deployed_by, row.change) == ("technicians hear of tickets", "ana",
                                                          "deploy")


def test_deploying_the_rules_in_force_again_stores_nothing(db, tmp_path):
    deploy(db, rules_dir(tmp_path))
    again = deploy(db, rules_dir(tmp_path), "same again")
    with db.session() as s:
        assert (again.version, again.stored, len(rv.history(s))) == (1, False, 1)


def test_a_broken_set_is_refused_with_file_line_and_column(db, tmp_path):
    broken = rules_dir(tmp_path, TECHNICIANS.replace("type:", "typ:"))
    with pytest.raises(RuleFileError) as refused:
        rv.RuleSource.from_path(broken)
    assert refused.value.problems[0].located().startswith(f"{broken}/extra.yaml:3:12: ")


def test_history_lists_versions_newest_first(db, tmp_path):
    deploy(db, rules_dir(tmp_path), "one")
    deploy(db, rules_dir(tmp_path, TECHNICIANS), "two")
    with db.session() as s:
        assert [(r.version, r.message) for r in rv.history(s)] == [(2, "two"), (1, "one")]


def test_diff_is_a_unified_diff_per_file(db, tmp_path):
    deploy(db, rules_dir(tmp_path))
    deploy(db, rules_dir(tmp_path, TECHNICIANS))
    with db.session() as s:
        forward, same = rv.diff(rv.get(s, 1), rv.get(s, 2)), rv.diff(rv.get(s, 2), rv.get(s, 2))
    assert forward.splitlines()[:3] == ["--- /dev/null", "+++ v2/extra.yaml", "@@ -0,0 +1,4 @@"]
    assert "+    receivers: [{role: [technician]}]" in forward.splitlines()
    assert same == ""


def test_a_rollback_puts_old_rules_in_force_as_a_new_version(db, tmp_path):
    deploy(db, rules_dir(tmp_path))
    deploy(db, rules_dir(tmp_path, TECHNICIANS))
    with db.session() as s:
        back = rv.rollback(s, 1, who="ana")
    with db.session() as s:
        row = rv.active(s)
        assert row is not None and (row.version, row.change, row.source_version) == (
            3, "rollback", 1)
        assert row.content_hash == rv.get(s, 1).content_hash and back.stored
        assert rv.rollback(s, 1).stored is False  # in force already
        with pytest.raises(NotFound):
            rv.rollback(s, 9)


def test_a_batch_keeps_the_rules_it_pinned_while_a_deploy_swaps_them(tmp_path):
    engine = RuleEngine(load_ruleset(rules_dir(tmp_path)), version=1)
    doc = {**TICKET, "actor": {}}
    with engine.pinned() as batch:
        engine.swap(load_ruleset(rules_dir(tmp_path, TECHNICIANS)), version=2)
        assert "tickets-to-technicians" not in batch.match(doc) and batch.version == 1
        assert "tickets-to-technicians" in engine.match(doc) and engine.version == 2
        assert batch.compiled.freed is False
    assert batch.compiled.freed is True  # the old set went with its last batch


def test_a_process_without_rule_files_follows_a_deploy(db, tmp_path):
    shipped = rules_dir(tmp_path / "a")
    sync = RuleSync(db, str(shipped), deploy_files=False)  # first start: the files as v1
    shutil.rmtree(shipped)  # a worker on another machine has no rule files
    deploy(db, rules_dir(tmp_path / "b", TECHNICIANS))
    assert sync.engine.version == 1
    sync.sync()
    assert sync.engine.version == 2
    assert "tickets-to-technicians" in sync.engine.match({**TICKET, "actor": {}})
    assert sync.engine_for(1).version == 1 and sync.engine.version == 2
