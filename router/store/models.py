"""SQLAlchemy 2 models. Every table carries ``tenant_id``; every query filters by it.

Directory ids are the host platform's own string ids, unique per tenant, so the
directory tables use (tenant_id, id) primary keys. Herald's own rows (events,
feed items, deliveries, tokens) use surrogate integer ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from router.core.enums import DeliveryStatus, EventStatus

Json = JSON().with_variant(JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: Json, list[Any]: Json, datetime: UtcDateTime()}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    api_key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    signing_secret: Mapped[str] = mapped_column(String(200))
    previous_signing_secret: Mapped[str | None] = mapped_column(String(200))
    secret_rotated_at: Mapped[datetime | None]
    default_language: Mapped[str] = mapped_column(String(20), default="en")
    default_time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA; None: UTC
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # UserKind
    name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str | None] = mapped_column(String(20))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    org_id: Mapped[str | None] = mapped_column(String(200))
    avatar_url: Mapped[str] = mapped_column(String(2000), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA; None: the tenant's
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_users_org", "tenant_id", "org_id"),
    )


class UserRole(Base):
    """Roles unnested for the role selector (kept in step with User.roles)."""

    __tablename__ = "user_roles"

    tenant_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(100), primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.id"],
                             ondelete="CASCADE"),
        Index("ix_user_roles_role", "tenant_id", "role"),
    )


class Unit(Base):
    """A department or a team: a named set of users."""

    __tablename__ = "units"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # MemberKind
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), default="")


class UnitMember(Base):
    __tablename__ = "unit_members"

    tenant_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    unit_kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "unit_kind", "unit_id"],
                             ["units.tenant_id", "units.kind", "units.id"], ondelete="CASCADE"),
    )


class Template(Base):
    __tablename__ = "templates"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), default="")


class TemplateGroup(Base):
    """One receiver group of a template submodule; position 0 is the default group."""

    __tablename__ = "template_groups"

    tenant_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    submodule: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300), default="")

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "template_id"],
                             ["templates.tenant_id", "templates.id"], ondelete="CASCADE"),
    )


class GroupMember(Base):
    __tablename__ = "group_members"

    tenant_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    submodule: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    member_kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # MemberKind
    member_id: Mapped[str] = mapped_column(String(200), primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "template_id", "submodule", "group_id"],
            ["template_groups.tenant_id", "template_groups.template_id",
             "template_groups.submodule", "template_groups.group_id"], ondelete="CASCADE"),
    )


class SubjectRow(Base):
    """A subject known to the directory; event fields fill what it leaves open."""

    __tablename__ = "subjects"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    number: Mapped[str] = mapped_column(String(100), default="")
    template_id: Mapped[str | None] = mapped_column(String(200))
    group: Mapped[str | None] = mapped_column(String(200))
    code_id: Mapped[str | None] = mapped_column(String(200))
    customer_org_id: Mapped[str | None] = mapped_column(String(200))
    creator_id: Mapped[str | None] = mapped_column(String(200))
    visibility: Mapped[str] = mapped_column(String(20), default="public")
    language: Mapped[str | None] = mapped_column(String(20))


class Participant(Base):
    __tablename__ = "participants"

    tenant_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)


class Subscription(Base):
    """A code user's sign-up for one subject (ticket or video session)."""

    __tablename__ = "subscriptions"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(200))
    code_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    push_subscription: Mapped[dict[str, Any] | None]
    channels: Mapped[list[Any]] = mapped_column(default=list)
    language: Mapped[str | None] = mapped_column(String(20))
    time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA; None: the tenant's
    created_by: Mapped[str] = mapped_column(String(20), default="code_user")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_subscriptions_subject", "tenant_id", "subject_kind", "subject_id"),)


class UserSettings(Base):
    __tablename__ = "user_settings"

    tenant_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    push: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[bool] = mapped_column(Boolean, default=True)
    customer_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    advanced: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quiet_hours: Mapped[list[Any] | None]  # [{days, from, to}] in local time; None: none
    email_digest: Mapped[dict[str, Any] | None]  # {cadence, at}; None: immediate
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.id"],
                             ondelete="CASCADE"),
    )


class CodeState(Base):
    """Per-code access state: token revocation and the code users' feed cut-off."""

    __tablename__ = "code_states"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    code_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens_revoked_before: Mapped[datetime | None]
    notifications_cutoff: Mapped[datetime | None]


class EventRow(Base):
    __tablename__ = "events"

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default=EventStatus.RECEIVED)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    routed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    plan: Mapped[dict[str, Any] | None]
    rules_version: Mapped[int | None] = mapped_column(Integer)  # the version that routed it

    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id", name="uq_events_tenant_event"),
        Index("ix_events_status", "status", "received_at"),
        # a route job's top-up: its tenants' waiting events (fair lanes)
        Index("ix_events_waiting", "tenant_id", "received_at", "pk",
              postgresql_where=text("status = 'received'"),
              sqlite_where=text("status = 'received'")),
    )


class FeedItem(Base):
    __tablename__ = "feed_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(100))
    receiver_kind: Mapped[str] = mapped_column(String(20))
    receiver_id: Mapped[str] = mapped_column(String(200))
    seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(100))
    subject_kind: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(200))
    subject_number: Mapped[str] = mapped_column(String(100), default="")
    code_id: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")
    actor_name: Mapped[str] = mapped_column(String(300), default="")
    actor_avatar_url: Mapped[str] = mapped_column(String(2000), default="")
    link: Mapped[str] = mapped_column(String(2000), default="")
    count: Mapped[int] = mapped_column(Integer, default=1)
    unread: Mapped[bool] = mapped_column(Boolean, default=True)
    last_event_pk: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # inbox states (router/delivery/inbox.py): shown in an opened drawer; archived (and so
    # read); hidden until the wake-up time, which is the durable timer of the wake-up
    seen_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_feed_receiver_updated", "tenant_id", "receiver_kind", "receiver_id",
              "updated_at", "id"),
        Index("ix_feed_receiver_seq", "tenant_id", "receiver_kind", "receiver_id", "seq"),
        Index("ix_feed_unread", "tenant_id", "receiver_kind", "receiver_id",
              postgresql_where=text("unread"), sqlite_where=text("unread")),
        Index("ix_feed_unread_subject", "tenant_id", "subject_kind", "subject_id",
              postgresql_where=text("unread"), sqlite_where=text("unread")),
        Index("uq_feed_unread_stack", "tenant_id", "receiver_kind", "receiver_id", "event_type",
              "subject_kind", "subject_id", unique=True,
              postgresql_where=text("unread"), sqlite_where=text("unread")),
        Index("ix_feed_archived", "tenant_id", "receiver_kind", "receiver_id", "updated_at", "id",
              postgresql_where=text("archived_at is not null"),
              sqlite_where=text("archived_at is not null")),
        Index("ix_feed_snoozed", "snoozed_until",
              postgresql_where=text("snoozed_until is not null"),
              sqlite_where=text("snoozed_until is not null")),
    )


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(100))
    event_pk: Mapped[int] = mapped_column(ForeignKey("events.pk"))
    receiver_kind: Mapped[str] = mapped_column(String(20))
    receiver_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    strategy: Mapped[str] = mapped_column(String(20))
    step: Mapped[int] = mapped_column(Integer, default=0)
    chain: Mapped[list[Any]] = mapped_column(default=list)  # first_success: channels after this
    feed_item_id: Mapped[int | None] = mapped_column(BigId)
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)  # language, texts, link
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_response: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    # a digest (rule `digest`, quiet hours, email cadence, throttle): the rows sharing a
    # key go out as one message when it falls due (router/delivery/digests.py)
    digest_key: Mapped[str | None] = mapped_column(String(400))
    throttle_key: Mapped[str | None] = mapped_column(String(400))  # counted by `throttle`
    lease_until: Mapped[datetime | None]  # while sending: the sweeper leaves it alone until then
    worker_id: Mapped[str | None] = mapped_column(String(100))  # while sending: who claimed it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_deliveries_event", "event_pk"),
        Index("ix_deliveries_open", "status", "updated_at",
              postgresql_where=text("status in ('pending', 'sending')"),
              sqlite_where=text("status in ('pending', 'sending')")),
        Index("ix_deliveries_digest", "tenant_id", "digest_key",
              postgresql_where=text("digest_key is not null and status in ('pending', 'sending')"),
              sqlite_where=text("digest_key is not null and status in ('pending', 'sending')")),
        Index("ix_deliveries_throttle", "tenant_id", "throttle_key", "created_at",
              postgresql_where=text("throttle_key is not null"),
              sqlite_where=text("throttle_key is not null")),
    )


class DeliveryLog(Base):
    """Append-only status history of deliveries (what the activity view shows)."""

    __tablename__ = "delivery_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_delivery_log_delivery", "delivery_id", "id"),)


class PushTarget(Base):
    """A browser push subscription or a native app (FCM) device token of a user."""

    __tablename__ = "push_targets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # webpush | fcm
    endpoint: Mapped[str] = mapped_column(String(2000))  # push endpoint URL or FCM token
    p256dh: Mapped[str | None] = mapped_column(String(200))
    auth: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", "kind", "endpoint", name="uq_push_target"),
        Index("ix_push_targets_user", "tenant_id", "user_id"),
    )


class AccessToken(Base):
    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(100))
    code_id: Mapped[str | None] = mapped_column(String(200))
    subject_kind: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(200))
    subscription_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_access_tokens_code", "tenant_id", "code_id"),)


class UnsubscribeToken(Base):
    __tablename__ = "unsubscribe_tokens"

    token_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(100))
    receiver_kind: Mapped[str] = mapped_column(String(20))
    receiver_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class RuleVersion(Base):
    """A deployed rule set: every file's name and text. Versions only grow; the highest
    one is the set in force (a rollback stores an old content as a new version)."""

    __tablename__ = "rule_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    content_hash: Mapped[str] = mapped_column(String(64))
    files: Mapped[list[Any]]  # [{"name": "platform.yaml", "text": "..."}], sorted by name
    change: Mapped[str] = mapped_column(String(20))  # RulesChange
    source_version: Mapped[int | None] = mapped_column(Integer)  # a rollback's origin
    message: Mapped[str] = mapped_column(Text, default="")
    deployed_by: Mapped[str] = mapped_column(String(200), default="")
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)
class ConsoleKey(Base):
    """A tenant admin's key to the admin console (`herald console-key create`): only its
    hash is stored. Console sessions are signed with the key's own session secret, so
    revoking the key ends its sessions at once."""

    __tablename__ = "console_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(200), default="")
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    session_secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_console_keys_tenant", "tenant_id"),)


class WorkerHeartbeat(Base):
    """A live worker process: it beats every few seconds; a stale row means it died and
    another worker releases the deliveries it had claimed (exactly once: it deletes the row)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChannelBreaker(Base):
    """The circuit breaker of one channel's provider, shared by every worker process."""

    __tablename__ = "channel_breakers"

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive transient failures
    cooldown_s: Mapped[float] = mapped_column(Float, default=0.0)  # of the current opening
    reopen_at: Mapped[datetime | None]  # open: deliveries are held until then
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
