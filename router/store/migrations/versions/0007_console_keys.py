"""console keys: a tenant admin's credential for the admin console (only its hash stored)

Revision ID: 0007_console_keys
Revises: 0006_inbox_states
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_console_keys'
down_revision = '0006_inbox_states'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('key_hash', sa.String(length=128), nullable=False),
    sa.Column('session_secret', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_index('ix_console_keys_tenant', 'console_keys', ['tenant_id'])


def downgrade() -> None:
    op.drop_index('ix_console_keys_tenant', table_name='console_keys')
    op.drop_table('console_keys')
