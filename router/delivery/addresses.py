"""Where deliveries go, read and forgotten for the channel adapters: push targets (a
user's registrations, a code user's sign-up), the push switch, tenant names. This is the
adapters' only SQL: ``channels`` import it and never the store (``.importlinter``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from router.core.enums import Channel, PushKind
from router.store import models as m
from router.store.db import one_of

Receiver = tuple[str, str]  # tenant, receiver id


class PushAddress(NamedTuple):
    """One place a push goes: a browser subscription or an FCM device token."""

    kind: str  # PushKind.WEBPUSH | PushKind.FCM
    address: str  # push endpoint URL, or FCM token
    p256dh: str = ""
    auth: str = ""


def _by_tenant(receivers: Iterable[Receiver]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for tenant, rid in receivers:
        grouped.setdefault(tenant, set()).add(rid)
    return grouped


def user_push_addresses(s: Session, users: Iterable[Receiver]
                        ) -> dict[Receiver, list[PushAddress]]:
    """Every registered push target of these employees and customers, oldest first."""
    found: dict[Receiver, list[PushAddress]] = {}
    for tenant, ids in _by_tenant(users).items():
        rows = s.scalars(select(m.PushTarget).where(
            m.PushTarget.tenant_id == tenant, one_of(s, m.PushTarget.user_id, ids))
            .order_by(m.PushTarget.id))
        for row in rows:
            found.setdefault((tenant, row.user_id), []).append(
                PushAddress(row.kind, row.endpoint, row.p256dh or "", row.auth or ""))
    return found


def push_switched_off(s: Session, users: Iterable[Receiver]) -> set[Receiver]:
    """Users whose push switch is off now (it may have changed since planning)."""
    off: set[Receiver] = set()
    for tenant, ids in _by_tenant(users).items():
        off |= {(tenant, uid) for uid in s.scalars(select(m.UserSettings.user_id).where(
            m.UserSettings.tenant_id == tenant, one_of(s, m.UserSettings.user_id, ids),
            m.UserSettings.push.is_(False)))}
    return off


def code_user_push_address(s: Session, code_user: Receiver, subject: dict[str, Any]
                           ) -> tuple[PushAddress | None, str]:
    """The code user's push subscription, only for the subject they signed up for; else
    None and why not."""
    sub = s.get(m.Subscription, code_user)
    if sub is None or not sub.active:
        return None, "the code user's subscription no longer exists"
    if (sub.subject_kind, sub.subject_id) != (subject.get("kind"), subject.get("id")):
        return None, "the code user signed up for another subject"
    info = sub.push_subscription or {}
    keys = info.get("keys") or {}
    if Channel.PUSH not in sub.channels or not info.get("endpoint"):
        return None, "the code user has no push subscription"
    return PushAddress(PushKind.WEBPUSH, str(info["endpoint"]), str(keys.get("p256dh", "")),
                       str(keys.get("auth", ""))), ""


def forget_user_push(s: Session, user: Receiver, addresses: Iterable[str]) -> None:
    """Drop a user's push targets that the provider says are gone."""
    tenant, uid = user
    s.execute(delete(m.PushTarget).where(
        m.PushTarget.tenant_id == tenant, m.PushTarget.user_id == uid,
        m.PushTarget.endpoint.in_(list(addresses))))


def forget_code_user_push(s: Session, code_user: Receiver, addresses: Iterable[str]) -> None:
    """Drop a code user's push subscription the provider says is gone (the sign-up stays,
    for its other channels)."""
    sub = s.get(m.Subscription, code_user)
    if sub is None or (sub.push_subscription or {}).get("endpoint") not in set(addresses):
        return
    sub.push_subscription = None
    sub.channels = [c for c in sub.channels if c != Channel.PUSH]


def tenant_names(s: Session, tenants: Iterable[str]) -> dict[str, str]:
    return {t.id: t.name for t in s.scalars(
        select(m.Tenant).where(m.Tenant.id.in_(set(tenants))))}
