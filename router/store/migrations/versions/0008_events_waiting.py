"""events waiting for routing, per tenant: a route job tops its batch up with its own
tenants' waiting events only (fair lanes), found through this partial index

Revision ID: 0008_events_waiting
Revises: 0007_console_keys
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_events_waiting'
down_revision = '0007_console_keys'
branch_labels = None
depends_on = None

WAITING = "status = 'received'"


def upgrade() -> None:
    op.create_index('ix_events_waiting', 'events', ['tenant_id', 'received_at', 'pk'],
                    postgresql_where=sa.text(WAITING), sqlite_where=sa.text(WAITING))


def downgrade() -> None:
    op.drop_index('ix_events_waiting', table_name='events')
