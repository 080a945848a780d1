"""The directory service layer: tenants' users, units, templates, subjects,
code-user subscriptions and settings. Every function is scoped to one tenant."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from router.core.enums import Channel, MemberKind, SubjectKind, Submodule, UserKind, Visibility
from router.core.errors import NotFound
from router.core.inputs import NOT_SPACE, Id, Input, Role
from router.directory.quiet import EmailDigest, check_zone
from router.directory.settings import SettingsIn
from router.store import models as m

_ID = Field(min_length=1, max_length=200)
EMAIL_PATTERN = f"^{NOT_SPACE}@]+@{NOT_SPACE}@]+$"
# the shape of an endpoint; where it may point is the outbound policy's (router.core.outbound)
ENDPOINT_PATTERN = (r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])"
                    rf"(:[0-9]{{1,5}})?([/?#]{NOT_SPACE}]*)?$")


def _if_then(condition: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    return {"if": condition, "then": then}


def _given(field: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {field: schema}, "required": [field]}


def _known_zone(cls: type, value: str | None) -> str | None:
    return value if value is None else check_zone(value)


class UserIn(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_if_then(
        _given("kind", {"const": UserKind.CUSTOMER.value}),
        _given("org_id", {"type": "string", "minLength": 1})))

    id: str = _ID
    kind: UserKind = UserKind.EMPLOYEE
    name: str = Field(default="", max_length=300)
    email: str | None = Field(default=None, max_length=320, pattern=EMAIL_PATTERN)
    language: str | None = Field(default=None, max_length=20)
    roles: list[Role] = Field(default_factory=list, max_length=50)
    org_id: str | None = Field(default=None, max_length=200)
    avatar_url: str = Field(default="", max_length=2000)
    active: StrictBool = True
    time_zone: str | None = Field(default=None, max_length=64, examples=["Europe/Berlin"],
                                  description="IANA name; none: the tenant's, else UTC")

    _zone = field_validator("time_zone")(_known_zone)

    @model_validator(mode="after")
    def _customer_has_org(self) -> UserIn:
        if self.kind == UserKind.CUSTOMER and not self.org_id:
            raise ValueError("a customer needs an org_id")
        return self


class UnitIn(Input):
    model_config = ConfigDict(extra="forbid")

    id: str = _ID
    name: str = Field(default="", max_length=300)
    members: list[Id] = Field(default_factory=list, max_length=100_000)


class MemberRef(Input):
    model_config = ConfigDict(extra="forbid")

    kind: MemberKind
    id: str = _ID


class GroupIn(Input):
    model_config = ConfigDict(extra="forbid")

    id: str = _ID
    name: str = Field(default="", max_length=300)
    members: list[MemberRef] = Field(default_factory=list, max_length=100_000)


class TemplateIn(Input):
    """A template: per submodule, its ordered receiver groups (the first is the default)."""

    model_config = ConfigDict(extra="forbid")

    id: str = _ID
    name: str = Field(default="", max_length=300)
    groups: dict[Submodule, list[GroupIn]] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _unique_groups(cls, value: dict[Submodule, list[GroupIn]]) -> dict[Submodule, list[GroupIn]]:
        for submodule, groups in value.items():
            ids = [g.id for g in groups]
            if len(ids) != len(set(ids)):
                raise ValueError(f"{submodule}: group ids must be unique")
        return value


class SubjectIn(Input):
    model_config = ConfigDict(extra="forbid")

    kind: SubjectKind
    id: str = _ID
    number: str = Field(default="", max_length=100)
    template_id: Id | None = None
    group: Id | None = None
    code_id: Id | None = None
    customer_org_id: Id | None = None
    creator_id: Id | None = None
    visibility: Visibility = Visibility.PUBLIC
    language: str | None = Field(default=None, max_length=20)
    participants: list[Id] = Field(default_factory=list, max_length=10_000)


class PushKeys(Input):
    model_config = ConfigDict(extra="forbid")

    # base64url of a 65-byte uncompressed P-256 point (0x04 first) and of 16 bytes
    p256dh: str = Field(min_length=80, max_length=100, pattern=r"^B[A-P][A-Za-z0-9_-]{85}=?$")
    auth: str = Field(min_length=20, max_length=30, pattern=r"^[A-Za-z0-9_-]{22}(==)?$")


class PushSubscriptionIn(Input):
    """A browser PushSubscription.toJSON(): endpoint plus keys (lengths checked)."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(min_length=8, max_length=2000, pattern=ENDPOINT_PATTERN)
    keys: PushKeys

    @field_validator("endpoint")
    @classmethod
    def _https(cls, value: str) -> str:
        from router.directory.push_validation import check_endpoint

        return check_endpoint(value)

    @field_validator("keys")
    @classmethod
    def _key_lengths(cls, value: PushKeys) -> PushKeys:
        from router.directory.push_validation import check_keys

        check_keys(value.p256dh, value.auth)
        return value


_NO_CHANNELS = {"not": _given("channels", {"minItems": 1})}  # none listed: from what is given
SUBSCRIPTION_RULES: list[Any] = [  # _consistent below, said in the schema
    _if_then(_given("channels", {"contains": {"const": "email"}}),
             _given("email", {"type": "string"})),
    _if_then(_given("channels", {"contains": {"const": "push"}}),
             _given("push_subscription", {"type": "object"})),
    _if_then(_NO_CHANNELS, {"anyOf": [_given("email", {"type": "string"}),
                                      _given("push_subscription", {"type": "object"})]}),
    _if_then(_given("created_by", {"const": "employee"}), {"anyOf": [
        _given("channels", {"const": ["email"]}),
        {"allOf": [_NO_CHANNELS, _given("email", {"type": "string"}),
                   {"not": _given("push_subscription", {"type": "object"})}]}]}),
]


class SubscriptionIn(Input):
    """A code user's sign-up for one ticket or video session."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": SUBSCRIPTION_RULES})

    id: str = _ID
    subject_kind: Literal[SubjectKind.TICKET, SubjectKind.VIDEO_SESSION]
    subject_id: str = _ID
    code_id: Id | None = None
    email: str | None = Field(default=None, max_length=320, pattern=EMAIL_PATTERN)
    push_subscription: PushSubscriptionIn | None = None
    channels: list[Literal[Channel.EMAIL, Channel.PUSH]] = Field(default_factory=list)
    language: str | None = Field(default=None, max_length=20)
    time_zone: str | None = Field(default=None, max_length=64)
    created_by: Literal["code_user", "employee"] = "code_user"

    _zone = field_validator("time_zone")(_known_zone)

    @model_validator(mode="after")
    def _consistent(self) -> SubscriptionIn:
        if not self.channels:
            self.channels = [c for c, ok in ((Channel.EMAIL, self.email),  # type: ignore[misc]
                                              (Channel.PUSH, self.push_subscription)) if ok]
        if Channel.EMAIL in self.channels and not self.email:
            raise ValueError("channel 'email' needs an email address")
        if Channel.PUSH in self.channels and not self.push_subscription:
            raise ValueError("channel 'push' needs a push_subscription")
        if self.created_by == "employee" and self.channels != [Channel.EMAIL]:
            raise ValueError("an employee can sign a code user up for email only")
        if not self.channels:
            raise ValueError("give an email address or a push subscription")
        return self


# ------------------------------------------------------------------- writes


def put_user(s: Session, tenant: str, user: UserIn) -> None:
    data = user.model_dump(mode="json")
    if "time_zone" not in user.model_fields_set:  # the user's own choice (PUT /v1/me/time-zone)
        del data["time_zone"]
    s.merge(m.User(tenant_id=tenant, **data))
    s.execute(delete(m.UserRole).where(m.UserRole.tenant_id == tenant,
                                       m.UserRole.user_id == user.id))
    s.flush()
    s.add_all(m.UserRole(tenant_id=tenant, user_id=user.id, role=r) for r in set(user.roles))


def delete_user(s: Session, tenant: str, user_id: str) -> None:
    row = _get(s, m.User, (tenant, user_id), f"user {user_id!r}")
    s.execute(delete(m.UserRole).where(m.UserRole.tenant_id == tenant,
                                       m.UserRole.user_id == user_id))
    s.execute(delete(m.UserSettings).where(m.UserSettings.tenant_id == tenant,
                                           m.UserSettings.user_id == user_id))
    s.execute(delete(m.PushTarget).where(m.PushTarget.tenant_id == tenant,
                                         m.PushTarget.user_id == user_id))
    s.delete(row)


def put_unit(s: Session, tenant: str, kind: MemberKind, unit: UnitIn) -> None:
    s.merge(m.Unit(tenant_id=tenant, kind=kind, id=unit.id, name=unit.name))
    s.execute(delete(m.UnitMember).where(m.UnitMember.tenant_id == tenant,
                                         m.UnitMember.unit_kind == kind,
                                         m.UnitMember.unit_id == unit.id))
    s.flush()
    s.add_all(m.UnitMember(tenant_id=tenant, unit_kind=kind, unit_id=unit.id, user_id=u)
              for u in dict.fromkeys(unit.members))


def delete_unit(s: Session, tenant: str, kind: MemberKind, unit_id: str) -> None:
    row = _get(s, m.Unit, (tenant, kind, unit_id), f"{kind} {unit_id!r}")
    s.execute(delete(m.UnitMember).where(m.UnitMember.tenant_id == tenant,
                                         m.UnitMember.unit_kind == kind,
                                         m.UnitMember.unit_id == unit_id))
    s.delete(row)


def put_template(s: Session, tenant: str, template: TemplateIn) -> None:
    s.merge(m.Template(tenant_id=tenant, id=template.id, name=template.name))
    _clear_template(s, tenant, template.id)
    s.flush()
    for submodule, groups in template.groups.items():
        for position, group in enumerate(groups):
            s.add(m.TemplateGroup(tenant_id=tenant, template_id=template.id, submodule=submodule,
                                  group_id=group.id, position=position, name=group.name))
            s.flush()
            s.add_all(m.GroupMember(tenant_id=tenant, template_id=template.id,
                                    submodule=submodule, group_id=group.id,
                                    member_kind=ref.kind, member_id=ref.id)
                      for ref in {(r.kind, r.id): r for r in group.members}.values())


def _clear_template(s: Session, tenant: str, template_id: str) -> None:
    for model in (m.GroupMember, m.TemplateGroup):
        s.execute(delete(model).where(model.tenant_id == tenant, model.template_id == template_id))


def delete_template(s: Session, tenant: str, template_id: str) -> None:
    row = _get(s, m.Template, (tenant, template_id), f"template {template_id!r}")
    _clear_template(s, tenant, template_id)
    s.delete(row)


def put_subject(s: Session, tenant: str, subject: SubjectIn) -> None:
    data = subject.model_dump(mode="json", exclude={"participants"})
    s.merge(m.SubjectRow(tenant_id=tenant, **data))
    _clear_participants(s, tenant, subject.kind, subject.id)
    s.flush()
    s.add_all(m.Participant(tenant_id=tenant, subject_kind=subject.kind, subject_id=subject.id,
                            user_id=u) for u in dict.fromkeys(subject.participants))


def _clear_participants(s: Session, tenant: str, kind: str, subject_id: str) -> None:
    s.execute(delete(m.Participant).where(m.Participant.tenant_id == tenant,
                                          m.Participant.subject_kind == kind,
                                          m.Participant.subject_id == subject_id))


def delete_subject(s: Session, tenant: str, kind: SubjectKind, subject_id: str) -> None:
    row = _get(s, m.SubjectRow, (tenant, kind, subject_id), f"{kind} {subject_id!r}")
    _clear_participants(s, tenant, kind, subject_id)
    s.delete(row)


def put_subscription(s: Session, tenant: str, sub: SubscriptionIn) -> None:
    data = sub.model_dump(mode="json")
    s.merge(m.Subscription(tenant_id=tenant, active=True, **data))


def end_subscription(s: Session, tenant: str, sub_id: str) -> m.Subscription:
    """The code user unsubscribes: nothing more about the subject reaches them."""
    sub: m.Subscription = _get(s, m.Subscription, (tenant, sub_id), f"subscription {sub_id!r}")
    sub.active = False
    return sub


def set_time_zone(s: Session, tenant: str, user_id: str, zone: str | None) -> m.User:
    """The user's own time zone (an IANA name checked by the caller); None: the tenant's."""
    user: m.User = _get(s, m.User, (tenant, user_id), f"user {user_id!r}")
    user.time_zone = zone
    return user


def delete_subscription(s: Session, tenant: str, sub_id: str) -> None:
    s.delete(_get(s, m.Subscription, (tenant, sub_id), f"subscription {sub_id!r}"))


def get_settings(s: Session, tenant: str, user_id: str) -> SettingsIn:
    _get(s, m.User, (tenant, user_id), f"user {user_id!r}")
    row = s.get(m.UserSettings, (tenant, user_id))
    if row is None:
        return SettingsIn()
    return SettingsIn(push=row.push, email=row.email,
                      customer_notifications=row.customer_notifications, advanced=row.advanced,
                      quiet_hours=row.quiet_hours or [],
                      email_digest=EmailDigest(**(row.email_digest or {})))


def put_settings(s: Session, tenant: str, user_id: str, settings: SettingsIn) -> SettingsIn:
    _get(s, m.User, (tenant, user_id), f"user {user_id!r}")
    s.merge(m.UserSettings(tenant_id=tenant, user_id=user_id, push=settings.push,
                           email=settings.email,
                           customer_notifications=settings.customer_notifications,
                           advanced={k: v.model_dump() for k, v in settings.advanced.items()},
                           quiet_hours=[w.model_dump(by_alias=True)
                                        for w in settings.quiet_hours] or None,
                           email_digest=(settings.email_digest.model_dump()
                                         if settings.email_digest.cadence != "immediate"
                                         else None)))
    return settings


def _get(s: Session, model: type, key: tuple[Any, ...], what: str) -> Any:
    row = s.get(model, key)
    if row is None:
        raise NotFound(f"{what} not found")
    return row


def list_ids(s: Session, model: Any, tenant: str) -> list[str]:
    return list(s.scalars(select(model.id).where(model.tenant_id == tenant)))
