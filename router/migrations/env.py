"""Alembic environment: runs on the connection Herald hands it (router.db.migrate)."""

from alembic import context

from router.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    from router.config import get_settings
    from router.db import _make_engine

    connection = _make_engine(get_settings().database_url).connect()

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
