"""Shared fixtures: the real PostgreSQL (database `test`) and Redis of the machine.

The schema is rebuilt once per test session through the Alembic migrations;
tests isolate themselves by creating their own tenant, which also exercises
tenant scoping on every query.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from router.ruleset.engine import RuleEngine
from router.ruleset.rulefile import load_ruleset
from router.store.db import Database
from tests import factories as f

PG_BASE = os.environ.get("HERALD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Each test session gets its own schema, so concurrent runs never clobber each other;
# subprocesses started by the harness use the same URL and so the same schema.
SCHEMA = f"herald_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
PG_URL = f"{PG_BASE}?options=-csearch_path%3D{SCHEMA}&application_name={SCHEMA}"
REDIS_URL = os.environ.get("HERALD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = os.path.join(ROOT, "rules")


@pytest.fixture(scope="session")
def pg() -> Iterator[Database]:
    admin = Database(PG_BASE)
    with admin.engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    db = Database(PG_URL)
    db.migrate()
    yield db
    db.dispose()
    with admin.engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


@pytest.fixture
def session(pg: Database) -> Iterator:
    with pg.session() as s:
        yield s


@pytest.fixture
def tenant(session) -> str:
    return f.new_tenant(session).id


@pytest.fixture(scope="session")
def ruleset():
    return load_ruleset(RULES)


@pytest.fixture(scope="session")
def engine(ruleset) -> RuleEngine:
    return RuleEngine(ruleset)


@pytest.fixture
def new_tenant_key(pg: Database):
    """Create tenants in the shared PostgreSQL; returns (tenant id, API key, signing secret)."""
    from router.directory import tenants

    def make(name: str = "Acme") -> tuple[str, str, str]:
        import uuid

        with pg.session() as s:
            created = tenants.create(s, name, tenant_id=f"t-{uuid.uuid4().hex[:10]}")
        return created.tenant_id, created.api_key, created.signing_secret

    return make


pytest_plugins = ["tests.servers.fixtures"]


@contextmanager
def own_schema() -> Iterator[str]:
    """A migrated schema of its own (its URL), dropped afterwards: for tests that change
    what every deployment of the session shares, such as the rule set in force."""
    name = f"herald_own_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = Database(PG_BASE)
    with admin.engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    db = Database(f"{PG_BASE}?options=-csearch_path%3D{name}&application_name={name}")
    try:
        db.migrate()
        db.dispose()
        yield db.url
    finally:
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()
