"""initial schema

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE IF NOT EXISTS feed_seq")
    op.create_table('access_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('code_id', sa.String(length=200), nullable=True),
    sa.Column('subject_kind', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.String(length=200), nullable=False),
    sa.Column('subscription_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_access_tokens_code', 'access_tokens', ['tenant_id', 'code_id'], unique=False)
    op.create_table('delivery_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_delivery_log_delivery', 'delivery_log', ['delivery_id', 'id'], unique=False)
    op.create_table('feed_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('receiver_kind', sa.String(length=20), nullable=False),
    sa.Column('receiver_id', sa.String(length=200), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('subject_kind', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.String(length=200), nullable=False),
    sa.Column('subject_number', sa.String(length=100), nullable=False),
    sa.Column('code_id', sa.String(length=200), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('actor_name', sa.String(length=300), nullable=False),
    sa.Column('actor_avatar_url', sa.String(length=2000), nullable=False),
    sa.Column('link', sa.String(length=2000), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('unread', sa.Boolean(), nullable=False),
    sa.Column('last_event_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_feed_receiver_seq', 'feed_items', ['tenant_id', 'receiver_kind', 'receiver_id', 'seq'], unique=False)
    op.create_index('ix_feed_receiver_updated', 'feed_items', ['tenant_id', 'receiver_kind', 'receiver_id', 'updated_at', 'id'], unique=False)
    op.create_index('ix_feed_unread', 'feed_items', ['tenant_id', 'receiver_kind', 'receiver_id'], unique=False, postgresql_where=sa.text('unread'), sqlite_where=sa.text('unread'))
    op.create_index('ix_feed_unread_subject', 'feed_items', ['tenant_id', 'subject_kind', 'subject_id'], unique=False, postgresql_where=sa.text('unread'), sqlite_where=sa.text('unread'))
    op.create_index('uq_feed_unread_stack', 'feed_items', ['tenant_id', 'receiver_kind', 'receiver_id', 'event_type', 'subject_kind', 'subject_id'], unique=True, postgresql_where=sa.text('unread'), sqlite_where=sa.text('unread'))
    op.create_table('participants',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('subject_kind', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'subject_kind', 'subject_id', 'user_id')
    )
    op.create_table('push_targets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('endpoint', sa.String(length=2000), nullable=False),
    sa.Column('p256dh', sa.String(length=200), nullable=True),
    sa.Column('auth', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'user_id', 'kind', 'endpoint', name='uq_push_target')
    )
    op.create_index('ix_push_targets_user', 'push_targets', ['tenant_id', 'user_id'], unique=False)
    op.create_table('tenants',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('api_key_hash', sa.String(length=128), nullable=False),
    sa.Column('signing_secret', sa.String(length=200), nullable=False),
    sa.Column('previous_signing_secret', sa.String(length=200), nullable=True),
    sa.Column('secret_rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('default_language', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('api_key_hash')
    )
    op.create_table('unsubscribe_tokens',
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('receiver_kind', sa.String(length=20), nullable=False),
    sa.Column('receiver_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_table('code_states',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('code_id', sa.String(length=200), nullable=False),
    sa.Column('tokens_revoked_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notifications_cutoff', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'code_id')
    )
    op.create_table('events',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('routed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('plan', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('tenant_id', 'event_id', name='uq_events_tenant_event')
    )
    op.create_index('ix_events_status', 'events', ['status', 'received_at'], unique=False)
    op.create_table('subjects',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('number', sa.String(length=100), nullable=False),
    sa.Column('template_id', sa.String(length=200), nullable=True),
    sa.Column('group', sa.String(length=200), nullable=True),
    sa.Column('code_id', sa.String(length=200), nullable=True),
    sa.Column('customer_org_id', sa.String(length=200), nullable=True),
    sa.Column('creator_id', sa.String(length=200), nullable=True),
    sa.Column('visibility', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'kind', 'id')
    )
    op.create_table('subscriptions',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('subject_kind', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.String(length=200), nullable=False),
    sa.Column('code_id', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('push_subscription', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('channels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('language', sa.String(length=20), nullable=True),
    sa.Column('created_by', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id')
    )
    op.create_index('ix_subscriptions_subject', 'subscriptions', ['tenant_id', 'subject_kind', 'subject_id'], unique=False)
    op.create_table('templates',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id')
    )
    op.create_table('units',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'kind', 'id')
    )
    op.create_table('users',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('language', sa.String(length=20), nullable=True),
    sa.Column('roles', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('org_id', sa.String(length=200), nullable=True),
    sa.Column('avatar_url', sa.String(length=2000), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id')
    )
    op.create_index('ix_users_org', 'users', ['tenant_id', 'org_id'], unique=False)
    op.create_table('deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('event_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('receiver_kind', sa.String(length=20), nullable=False),
    sa.Column('receiver_id', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('strategy', sa.String(length=20), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('chain', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('feed_item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('provider_response', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_pk'], ['events.pk'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_deliveries_event', 'deliveries', ['event_pk'], unique=False)
    op.create_index('ix_deliveries_open', 'deliveries', ['status', 'updated_at'], unique=False, postgresql_where=sa.text("status in ('pending', 'sending')"), sqlite_where=sa.text("status in ('pending', 'sending')"))
    op.create_table('template_groups',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('template_id', sa.String(length=200), nullable=False),
    sa.Column('submodule', sa.String(length=40), nullable=False),
    sa.Column('group_id', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'template_id'], ['templates.tenant_id', 'templates.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'template_id', 'submodule', 'group_id')
    )
    op.create_table('unit_members',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('unit_kind', sa.String(length=20), nullable=False),
    sa.Column('unit_id', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'unit_kind', 'unit_id'], ['units.tenant_id', 'units.kind', 'units.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'unit_kind', 'unit_id', 'user_id')
    )
    op.create_table('user_roles',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'user_id'], ['users.tenant_id', 'users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'user_id', 'role')
    )
    op.create_index('ix_user_roles_role', 'user_roles', ['tenant_id', 'role'], unique=False)
    op.create_table('user_settings',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.String(length=200), nullable=False),
    sa.Column('push', sa.Boolean(), nullable=False),
    sa.Column('email', sa.Boolean(), nullable=False),
    sa.Column('customer_notifications', sa.Boolean(), nullable=False),
    sa.Column('advanced', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'user_id'], ['users.tenant_id', 'users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'user_id')
    )
    op.create_table('group_members',
    sa.Column('tenant_id', sa.String(length=100), nullable=False),
    sa.Column('template_id', sa.String(length=200), nullable=False),
    sa.Column('submodule', sa.String(length=40), nullable=False),
    sa.Column('group_id', sa.String(length=200), nullable=False),
    sa.Column('member_kind', sa.String(length=20), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'template_id', 'submodule', 'group_id'], ['template_groups.tenant_id', 'template_groups.template_id', 'template_groups.submodule', 'template_groups.group_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'template_id', 'submodule', 'group_id', 'member_kind', 'member_id')
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS feed_seq")
    op.drop_table('group_members')
    op.drop_table('user_settings')
    op.drop_index('ix_user_roles_role', table_name='user_roles')
    op.drop_table('user_roles')
    op.drop_table('unit_members')
    op.drop_table('template_groups')
    op.drop_index('ix_deliveries_open', table_name='deliveries', postgresql_where=sa.text("status in ('pending', 'sending')"), sqlite_where=sa.text("status in ('pending', 'sending')"))
    op.drop_index('ix_deliveries_event', table_name='deliveries')
    op.drop_table('deliveries')
    op.drop_index('ix_users_org', table_name='users')
    op.drop_table('users')
    op.drop_table('units')
    op.drop_table('templates')
    op.drop_index('ix_subscriptions_subject', table_name='subscriptions')
    op.drop_table('subscriptions')
    op.drop_table('subjects')
    op.drop_index('ix_events_status', table_name='events')
    op.drop_table('events')
    op.drop_table('code_states')
    op.drop_table('unsubscribe_tokens')
    op.drop_table('tenants')
    op.drop_index('ix_push_targets_user', table_name='push_targets')
    op.drop_table('push_targets')
    op.drop_table('participants')
    op.drop_index('uq_feed_unread_stack', table_name='feed_items', postgresql_where=sa.text('unread'), sqlite_where=sa.text('unread'))
    op.drop_index('ix_feed_unread_subject', table_name='feed_items', postgresql_where=sa.text('unread'), sqlite_where=sa.text('unread'))
    op.drop_index('ix_feed_unread', table_name='feed_items', postgresql_where=sa.text('unread'), sqlite_where=sa.text('unread'))
    op.drop_index('ix_feed_receiver_updated', table_name='feed_items')
    op.drop_index('ix_feed_receiver_seq', table_name='feed_items')
    op.drop_table('feed_items')
    op.drop_index('ix_delivery_log_delivery', table_name='delivery_log')
    op.drop_table('delivery_log')
    op.drop_index('ix_access_tokens_code', table_name='access_tokens')
    op.drop_table('access_tokens')
