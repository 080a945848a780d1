"""inbox states: feed items seen, archived and snoozed (with the wake-up's due time)

Revision ID: 0006_inbox_states
Revises: 0005_digests_throttles
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_inbox_states'
down_revision = '0005_digests_throttles'
branch_labels = None
depends_on = None

ARCHIVED = 'archived_at is not null'
SNOOZED = 'snoozed_until is not null'


def upgrade() -> None:
    for column in ('seen_at', 'archived_at', 'snoozed_until'):
        op.add_column('feed_items', sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_feed_archived', 'feed_items',
                    ['tenant_id', 'receiver_kind', 'receiver_id', 'updated_at', 'id'],
                    postgresql_where=sa.text(ARCHIVED), sqlite_where=sa.text(ARCHIVED))
    op.create_index('ix_feed_snoozed', 'feed_items', ['snoozed_until'],
                    postgresql_where=sa.text(SNOOZED), sqlite_where=sa.text(SNOOZED))


def downgrade() -> None:
    op.drop_index('ix_feed_snoozed', table_name='feed_items')
    op.drop_index('ix_feed_archived', table_name='feed_items')
    with op.batch_alter_table('feed_items') as batch:
        for column in ('snoozed_until', 'archived_at', 'seen_at'):
            batch.drop_column(column)
