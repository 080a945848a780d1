"""time zones on tenants, users and code-user sign-ups; quiet hours in user settings

Revision ID: 0004_time_zones_quiet_hours
Revises: 0003_reliability
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0004_time_zones_quiet_hours'
down_revision = '0003_reliability'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('tenants', sa.Column('default_time_zone', sa.String(length=64), nullable=True))
    op.add_column('users', sa.Column('time_zone', sa.String(length=64), nullable=True))
    op.add_column('subscriptions', sa.Column('time_zone', sa.String(length=64), nullable=True))
    op.add_column('user_settings', sa.Column(
        'quiet_hours', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                              'postgresql'), nullable=True))


def downgrade() -> None:
    for table, column in (('user_settings', 'quiet_hours'), ('subscriptions', 'time_zone'),
                          ('users', 'time_zone'), ('tenants', 'default_time_zone')):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
