"""Access tokens for code users (DESIGN §4).

Random, stored only as a SHA-256 hash, bound to (tenant, code, subject,
subscriber), valid at most 14 days from the notification's creation. A code's
"log out code users" revokes every token issued for it at once; its "delete all
notifications" sets a cut-off that hides older items from code users only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from router.core.errors import NotFound
from router.core.security import hash_secret, new_secret
from router.store import models as m
from router.store.models import utcnow

PREFIX = "hat_"


@dataclass(frozen=True)
class Scope:
    valid: bool
    reason: str = ""  # unknown | expired | revoked
    row: m.AccessToken | None = None

    def as_dict(self) -> dict[str, object]:
        if not self.valid or self.row is None:
            return {"valid": False, "reason": self.reason}
        r = self.row
        return {"valid": True, "tenant": r.tenant_id, "code_id": r.code_id,
                "subject": {"kind": r.subject_kind, "id": r.subject_id},
                "subscription_id": r.subscription_id, "expires_at": r.expires_at.isoformat()}


def issue(s: Session, tenant: str, code_id: str | None, subject: tuple[str, str],
          subscription_id: str, created_at: datetime, days: int) -> tuple[str, datetime]:
    token = new_secret(PREFIX)
    expires = created_at + timedelta(days=days)
    s.add(m.AccessToken(token_hash=hash_secret(token), tenant_id=tenant, code_id=code_id,
                        subject_kind=subject[0], subject_id=subject[1],
                        subscription_id=subscription_id, created_at=created_at,
                        expires_at=expires))
    return token, expires


def verify(s: Session, token: str, tenant: str | None = None,
           now: datetime | None = None) -> Scope:
    row = s.scalars(select(m.AccessToken).where(
        m.AccessToken.token_hash == hash_secret(token))).first()
    if row is None or (tenant is not None and row.tenant_id != tenant):
        return Scope(False, "unknown")
    if row.revoked_at is not None or _revoked_by_code(s, row):
        return Scope(False, "revoked")
    if (now or utcnow()) >= row.expires_at:
        return Scope(False, "expired")
    return Scope(True, row=row)


def _revoked_by_code(s: Session, row: m.AccessToken) -> bool:
    if row.code_id is None:
        return False
    state = s.get(m.CodeState, (row.tenant_id, row.code_id))
    return bool(state and state.tokens_revoked_before
                and row.created_at <= state.tokens_revoked_before)


def known_code(s: Session, tenant: str, code_id: str) -> None:
    """A code is known to a tenant once a subject, sign-up or token mentions it."""
    probes = [
        select(m.SubjectRow.id).where(m.SubjectRow.tenant_id == tenant,
                                      m.SubjectRow.kind == "code", m.SubjectRow.id == code_id),
        select(m.SubjectRow.id).where(m.SubjectRow.tenant_id == tenant,
                                      m.SubjectRow.code_id == code_id),
        select(m.Subscription.id).where(m.Subscription.tenant_id == tenant,
                                        m.Subscription.code_id == code_id),
        select(m.AccessToken.id).where(m.AccessToken.tenant_id == tenant,
                                       m.AccessToken.code_id == code_id),
    ]
    if not any(s.execute(probe.limit(1)).first() for probe in probes):
        raise NotFound(f"code {code_id!r} not found")


def revoke_code(s: Session, tenant: str, code_id: str) -> int:
    known_code(s, tenant, code_id)
    now = utcnow()
    _state(s, tenant, code_id).tokens_revoked_before = now
    result = s.execute(update(m.AccessToken).where(
        m.AccessToken.tenant_id == tenant, m.AccessToken.code_id == code_id,
        m.AccessToken.revoked_at.is_(None)).values(revoked_at=now))
    return getattr(result, "rowcount", 0) or 0


def clear_notifications(s: Session, tenant: str, code_id: str) -> datetime:
    known_code(s, tenant, code_id)
    now = utcnow()
    _state(s, tenant, code_id).notifications_cutoff = now
    return now


def cutoff(s: Session, tenant: str, code_id: str | None) -> datetime | None:
    if code_id is None:
        return None
    state = s.get(m.CodeState, (tenant, code_id))
    return state.notifications_cutoff if state else None


def _state(s: Session, tenant: str, code_id: str) -> m.CodeState:
    state = s.get(m.CodeState, (tenant, code_id))
    if state is None:
        state = m.CodeState(tenant_id=tenant, code_id=code_id)
        s.add(state)
    return state
