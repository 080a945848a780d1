"""Persistence: the SQLAlchemy models, the database handle, bulk writes, migrations, heartbeats."""
