"""Alembic environment: runs on the connection Herald hands it (router.store.db.migrate)."""

from typing import Any, Literal

from alembic import context

from router.store.models import Base, UtcDateTime

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    from router.core.config import get_config
    from router.store.db import _make_engine

    connection = _make_engine(get_config().database_url).connect()



def render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes UtcDateTime as the plain DDL type: migrations stay frozen."""
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite", render_item=render_item)
with context.begin_transaction():
    context.run_migrations()
