"""Console keys: a tenant admin's credential for the admin console (issue #18).

A console key is its own kind of credential: not the tenant's service API key, not a
user token. It is shown once at creation and stored only as a hash (like API keys);
each key has its own session secret, which signs the console sessions opened with it,
so revoking the key ends them at once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.core.errors import AuthError, NotFound, Problem, ValidationFailed
from router.core.security import hash_secret, new_secret
from router.store import models as m
from router.store.models import utcnow

PREFIX = "hc_"  # API keys start with hk_, user tokens are JWTs (two dots)
MAX_NAME = 200


def create(s: Session, tenant_id: str, name: str = "") -> tuple[m.ConsoleKey, str]:
    """A new key for the tenant's admins: (its row, the secret to show once)."""
    if s.get(m.Tenant, tenant_id) is None:
        raise NotFound(f"tenant {tenant_id!r} not found")
    if len(name) > MAX_NAME:
        raise ValidationFailed([Problem(f"at most {MAX_NAME} characters", path="name")])
    secret = new_secret(PREFIX)
    row = m.ConsoleKey(tenant_id=tenant_id, name=name, key_hash=hash_secret(secret),
                       session_secret=new_secret(), created_at=utcnow())
    s.add(row)
    s.flush()
    return row, secret


def listing(s: Session, tenant_id: str) -> list[m.ConsoleKey]:
    return list(s.scalars(select(m.ConsoleKey).where(m.ConsoleKey.tenant_id == tenant_id)
                          .order_by(m.ConsoleKey.id)))


def revoke(s: Session, tenant_id: str, key_id: int) -> m.ConsoleKey:
    row = s.get(m.ConsoleKey, key_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"console key {key_id} not found in tenant {tenant_id!r}")
    row.revoked_at = row.revoked_at or utcnow()
    return row


def looks_like(secret: str) -> bool:
    return secret.startswith(PREFIX)


def verify(s: Session, secret: str) -> m.ConsoleKey:
    """The live key this secret is; a wrong or revoked one is a 401."""
    row = s.scalars(select(m.ConsoleKey).where(m.ConsoleKey.key_hash == hash_secret(secret))).first()
    if row is None:
        raise AuthError("unknown console key", code="console.invalid_key")
    if row.revoked_at is not None:
        raise AuthError("this console key was revoked", code="console.revoked_key")
    return row


def live(s: Session, key_id: int) -> m.ConsoleKey | None:
    """The key a session names, if it still exists and is not revoked."""
    row = s.get(m.ConsoleKey, key_id)
    return row if row is not None and row.revoked_at is None else None
