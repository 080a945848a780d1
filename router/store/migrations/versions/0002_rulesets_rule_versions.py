"""rule set versions in the database; events record the version that routed them

Revision ID: 0002_rulesets
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0002_rulesets'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rule_versions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('files', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('change', sa.String(length=20), nullable=False),
    sa.Column('source_version', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('deployed_by', sa.String(length=200), nullable=False),
    sa.Column('deployed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    op.add_column('events', sa.Column('rules_version', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('events', 'rules_version')
    op.drop_table('rule_versions')
