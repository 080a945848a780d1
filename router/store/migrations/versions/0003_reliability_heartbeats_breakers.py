"""reliability: claims carry their worker, worker heartbeats, channel circuit breakers

Revision ID: 0003_reliability
Revises: 0002_rulesets
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_reliability'
down_revision = '0002_rulesets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('deliveries', sa.Column('worker_id', sa.String(length=100), nullable=True))
    op.create_table('worker_heartbeats',
    sa.Column('worker_id', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('worker_id')
    )
    op.create_table('channel_breakers',
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('cooldown_s', sa.Float(), nullable=False),
    sa.Column('reopen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel')
    )


def downgrade() -> None:
    op.drop_table('channel_breakers')
    op.drop_table('worker_heartbeats')
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('worker_id')
