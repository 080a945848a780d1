"""Audience resolution: selectors -> receivers, against the directory in SQL.

A :class:`DirectoryView` answers the planner's questions for one tenant and
memoises them, so routing a batch of events asks each question once. Users come back
as :class:`DirectoryUser` tuples and settings as Core rows of the columns the planner
reads (no ORM objects: building 50,000 of them was a second of a fan-out's routing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, Select, bindparam, select
from sqlalchemy.orm import Session

from router.core.enums import MemberKind, UserKind
from router.directory.quiet import Deferral, cadence_due, deferral, zone_for
from router.store import models as m
from router.store.db import core_read, dialect_of, one_of_param, pair_of_param, pair_params

T = TypeVar("T")
C = TypeVar("C")


@dataclass(frozen=True)
class GroupPick:
    group_id: str | None
    note: str  # why this group: "responsible group X" / "default group X"


class DirectoryUser(NamedTuple):
    """A user as the planner reads them (a tuple: a Row's attribute costs ~1 us to read,
    and a fan-out reads eight per receiver)."""

    id: str
    kind: str
    name: str
    email: str | None
    language: str | None
    active: bool
    avatar_url: str
    time_zone: str | None


USER_COLUMNS = tuple(getattr(m.User, name) for name in DirectoryUser._fields)
SETTINGS_COLUMNS = (m.UserSettings.user_id, m.UserSettings.push, m.UserSettings.email,
                    m.UserSettings.customer_notifications, m.UserSettings.advanced,
                    m.UserSettings.quiet_hours, m.UserSettings.email_digest)


# The batch lookups of routing, built once per dialect with named parameters: a statement
# built per call cost its construction and its cache key every time (7.8% of a worker's
# CPU under W3, docs/decisions.md "Routing's lookups are built once").
@cache
def _users_statement(dialect: str) -> Executable:
    return select(*USER_COLUMNS).where(m.User.tenant_id == bindparam("tenant"),
                                       one_of_param(dialect, m.User.id, "ids"))


@cache
def _settings_statement(dialect: str) -> Executable:
    return select(*SETTINGS_COLUMNS).where(m.UserSettings.tenant_id == bindparam("tenant"),
                                           one_of_param(dialect, m.UserSettings.user_id, "ids"))


@cache
def _push_statement(dialect: str) -> Executable:
    return select(m.PushTarget.user_id).where(
        m.PushTarget.tenant_id == bindparam("tenant"),
        one_of_param(dialect, m.PushTarget.user_id, "ids")).distinct()


@cache
def _subjects_statement(dialect: str) -> Select[Any]:
    return select(m.SubjectRow).where(
        m.SubjectRow.tenant_id == bindparam("tenant"),
        pair_of_param(dialect, m.SubjectRow.kind, m.SubjectRow.id, "keys"))


@cache
def _participants_statement(dialect: str) -> Executable:
    p = m.Participant
    return select(p.subject_kind, p.subject_id, p.user_id).where(
        p.tenant_id == bindparam("tenant"),
        pair_of_param(dialect, p.subject_kind, p.subject_id, "keys"))


@cache
def _subscriptions_statement(dialect: str) -> Select[Any]:
    sub = m.Subscription
    return select(sub).where(
        sub.tenant_id == bindparam("tenant"), sub.active.is_(True),
        pair_of_param(dialect, sub.subject_kind, sub.subject_id, "keys")).order_by(sub.id)


class DirectoryView:
    """Read-only, memoised questions about one tenant's directory."""

    def __init__(self, session: Session, tenant: str) -> None:
        self.s = session
        self.tenant = tenant
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._users: dict[str, DirectoryUser | None] = {}
        self._settings: dict[str, Any] = {}
        self._push: dict[str, bool] = {}

    def _memo(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        if key not in self._cache:
            self._cache[key] = compute()
        return cast(T, self._cache[key])

    # -- batch prefetch: one query per question for a whole batch of events ---------

    def prefetch_subjects(self, keys: Iterable[tuple[str, str]]) -> None:
        """Subjects, participants and code-user sign-ups for many subjects at once."""
        keys = [k for k in dict.fromkeys(keys) if ("subject", *k) not in self._cache]
        for chunk in _chunks(keys, 2000):
            self._prefetch_chunk(chunk)

    def _prefetch_chunk(self, keys: list[tuple[str, str]]) -> None:
        for key in keys:
            self._cache[("subject", *key)] = None
            self._cache[("participants", *key)] = []
            self._cache[("subs", *key)] = []
        dialect = dialect_of(self.s)
        params = {"tenant": self.tenant, **pair_params(dialect, "keys", keys)}
        for row in self.s.scalars(_subjects_statement(dialect), params):
            self._cache[("subject", row.kind, row.id)] = row
        for kind, sid, uid in core_read(self.s, _participants_statement(dialect), params):
            self._cache[("participants", kind, sid)].append(uid)
        for sub in self.s.scalars(_subscriptions_statement(dialect), params):
            self._cache[("subs", sub.subject_kind, sub.subject_id)].append(sub)

    def tenant_row(self) -> m.Tenant | None:
        return self._memo(("tenant",), lambda: self.s.get(m.Tenant, self.tenant))

    def subject(self, kind: str, subject_id: str) -> m.SubjectRow | None:
        return self._memo(("subject", kind, subject_id),
                          lambda: self.s.get(m.SubjectRow, (self.tenant, kind, subject_id)))

    def pick_group(self, template_id: str, submodule: str, wanted: str | None) -> GroupPick:
        groups = self._memo(("groups", template_id, submodule), lambda: list(self.s.scalars(
            select(m.TemplateGroup.group_id).where(
                m.TemplateGroup.tenant_id == self.tenant,
                m.TemplateGroup.template_id == template_id,
                m.TemplateGroup.submodule == submodule,
            ).order_by(m.TemplateGroup.position))))
        if wanted and wanted in groups:
            return GroupPick(wanted, f"responsible group {wanted}")
        if not groups:
            return GroupPick(None, f"template {template_id} has no {submodule} group")
        return GroupPick(groups[0], f"default group {groups[0]}")

    def group_emptiness(self, template_id: str, submodule: str, wanted: str | None) -> str:
        """Why the template's group for this submodule yields no employee, in words."""
        pick = self.pick_group(template_id, submodule, wanted)
        if pick.group_id is None:
            return pick.note
        members = self.group_members(template_id, submodule, pick.group_id)
        if not members:
            return f"group {pick.group_id} ({submodule} of template {template_id}) has no members"
        return (f"the members of group {pick.group_id} ({submodule} of template {template_id}) "
                f"are not employees in the directory")

    def group_members(self, template_id: str, submodule: str, group_id: str) -> list[str]:
        return self._memo(("members", template_id, submodule, group_id),
                          lambda: self._expand_group(template_id, submodule, group_id))

    def _expand_group(self, template_id: str, submodule: str, group_id: str) -> list[str]:
        refs = self.s.execute(select(m.GroupMember.member_kind, m.GroupMember.member_id).where(
            m.GroupMember.tenant_id == self.tenant, m.GroupMember.template_id == template_id,
            m.GroupMember.submodule == submodule, m.GroupMember.group_id == group_id)).all()
        users = [mid for kind, mid in refs if kind == MemberKind.USER]
        units = [(kind, mid) for kind, mid in refs if kind != MemberKind.USER]
        for kind, unit_id in units:
            users += self.unit_members(kind, unit_id)
        return list(dict.fromkeys(users))

    def unit_members(self, kind: str, unit_id: str) -> list[str]:
        return self._memo(("unit", kind, unit_id), lambda: list(self.s.scalars(
            select(m.UnitMember.user_id).where(
                m.UnitMember.tenant_id == self.tenant, m.UnitMember.unit_kind == kind,
                m.UnitMember.unit_id == unit_id))))

    def role_members(self, roles: tuple[str, ...]) -> list[str]:
        return self._memo(("roles", roles), lambda: list(dict.fromkeys(self.s.scalars(
            select(m.UserRole.user_id).where(m.UserRole.tenant_id == self.tenant,
                                             m.UserRole.role.in_(roles))))))

    def org_customers(self, org_id: str) -> list[str]:
        return self._memo(("org", org_id), lambda: list(self.s.scalars(
            select(m.User.id).where(m.User.tenant_id == self.tenant, m.User.org_id == org_id,
                                    m.User.kind == UserKind.CUSTOMER))))

    def participants(self, kind: str, subject_id: str) -> list[str]:
        return self._memo(("participants", kind, subject_id), lambda: list(self.s.scalars(
            select(m.Participant.user_id).where(
                m.Participant.tenant_id == self.tenant, m.Participant.subject_kind == kind,
                m.Participant.subject_id == subject_id))))

    def subscriptions(self, kind: str, subject_id: str) -> list[m.Subscription]:
        return self._memo(("subs", kind, subject_id), lambda: list(self.s.scalars(
            select(m.Subscription).where(
                m.Subscription.tenant_id == self.tenant, m.Subscription.subject_kind == kind,
                m.Subscription.subject_id == subject_id, m.Subscription.active.is_(True)
            ).order_by(m.Subscription.id))))

    def users(self, ids: Iterable[str]) -> dict[str, DirectoryUser]:
        """Users by id (one query for all not yet seen)."""
        ids = list(dict.fromkeys(ids))
        missing = [i for i in ids if i not in self._users]
        for chunk in _chunks(missing, 5000):
            found = {u[0]: DirectoryUser._make(u) for u in core_read(
                self.s, _users_statement(dialect_of(self.s)), {"tenant": self.tenant, "ids": chunk})}
            for uid in chunk:
                self._users[uid] = found.get(uid)
        return {i: u for i in ids if (u := self._users.get(i)) is not None}

    def settings(self, ids: Iterable[str]) -> dict[str, Any]:
        """Settings rows (SETTINGS_COLUMNS) of the users that have one."""
        ids = list(dict.fromkeys(ids))
        missing = [i for i in ids if i not in self._settings]
        for chunk in _chunks(missing, 5000):
            found: dict[str, Any] = {r.user_id: r for r in core_read(
                self.s, _settings_statement(dialect_of(self.s)),
                {"tenant": self.tenant, "ids": chunk})}
            for uid in chunk:
                self._settings[uid] = found.get(uid)
        return {i: r for i in ids if (r := self._settings.get(i)) is not None}

    def deferral(self, user: Any, row: Any | None, now: datetime) -> Deferral | None:
        """Whether this user (a USER_COLUMNS row; ``row`` their settings) is in quiet
        hours at ``now``, and until when: worked out once per user and view (batch)."""
        if row is None or not row.quiet_hours:
            return None
        key = ("quiet", user.id)
        if key not in self._cache:
            self._cache[key] = deferral(row.quiet_hours, self._zone(user), now)
        return cast(Deferral | None, self._cache[key])

    def cadence(self, user: Any, row: Any | None, now: datetime) -> Deferral | None:
        """When this user's emails go out under their digest cadence (None: at once)."""
        if row is None or not row.email_digest:
            return None
        key = ("cadence", user.id)
        if key not in self._cache:
            self._cache[key] = cadence_due(row.email_digest, self._zone(user), now)
        return cast(Deferral | None, self._cache[key])

    def _zone(self, user: Any) -> ZoneInfo:
        tenant = self.tenant_row()
        return zone_for(user.time_zone, tenant.default_time_zone if tenant else None)

    def has_push(self, ids: Iterable[str]) -> set[str]:
        """Which of these users registered at least one browser subscription or device."""
        ids = list(dict.fromkeys(ids))
        missing = [i for i in ids if i not in self._push]
        for chunk in _chunks(missing, 5000):
            found = set(core_read(self.s, _push_statement(dialect_of(self.s)),
                                  {"tenant": self.tenant, "ids": chunk}).scalars())
            for uid in chunk:
                self._push[uid] = uid in found
        return {i for i in ids if self._push.get(i)}


def _chunks(items: list[C], size: int) -> Iterable[list[C]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
