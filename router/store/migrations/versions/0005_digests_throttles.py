"""digests and throttles: delivery digest and throttle keys, the email digest cadence

Revision ID: 0005_digests_throttles
Revises: 0004_time_zones_quiet_hours
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0005_digests_throttles'
down_revision = '0004_time_zones_quiet_hours'
branch_labels = None
depends_on = None

OPEN = "digest_key is not null and status in ('pending', 'sending')"


def upgrade() -> None:
    op.add_column('deliveries', sa.Column('digest_key', sa.String(length=400), nullable=True))
    op.add_column('deliveries', sa.Column('throttle_key', sa.String(length=400), nullable=True))
    op.create_index('ix_deliveries_digest', 'deliveries', ['tenant_id', 'digest_key'],
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
    op.create_index('ix_deliveries_throttle', 'deliveries',
                    ['tenant_id', 'throttle_key', 'created_at'],
                    postgresql_where=sa.text('throttle_key is not null'),
                    sqlite_where=sa.text('throttle_key is not null'))
    op.add_column('user_settings', sa.Column(
        'email_digest', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                               'postgresql'), nullable=True))


def downgrade() -> None:
    op.drop_index('ix_deliveries_throttle', table_name='deliveries')
    op.drop_index('ix_deliveries_digest', table_name='deliveries')
    with op.batch_alter_table('user_settings') as batch:
        batch.drop_column('email_digest')
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('throttle_key')
        batch.drop_column('digest_key')
