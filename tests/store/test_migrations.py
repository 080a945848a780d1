"""The Alembic migrations and the models describe the same schema, on both backends."""

from __future__ import annotations

import ast
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from router.store.db import MIGRATIONS, Database
from router.store.models import Base


def _differences(db: Database) -> list[object]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_migrated_postgresql_schema_matches_the_models(pg):
    assert _differences(pg) == []


def test_migrated_sqlite_schema_matches_the_models(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/herald.db")
    try:
        db.migrate()
        assert _differences(db) == []
    finally:
        db.dispose()


def test_migrations_never_import_the_application():
    """A migration is frozen: importing router.* would let a later model change rewrite it."""
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        tree = ast.parse(Path(path).read_text())
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [name for name in imported if name.split(".")[0] in {"router", "channels",
                                                                         "workers"}], path.name
