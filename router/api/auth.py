"""Credentials: tenant API keys (service side), user JWTs and code-user access
tokens (receiver side). Only hashes of keys and access tokens are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.core.enums import ReceiverKind
from router.core.errors import AuthError, Forbidden
from router.core.security import USER_TOKEN_ALGORITHM, hash_secret
from router.delivery import access
from router.delivery.feed import Reader
from router.directory import console_keys
from router.store import models as m


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("send 'Authorization: Bearer <credential>'", code="auth.required")
    return token.strip()


def not_a_console_key(token: str, wanted: str) -> None:
    """A console key opens the admin console only: say so, not just 'unknown key'."""
    if console_keys.looks_like(token):
        raise Forbidden(f"a console key opens the admin console (/console) only; this API "
                        f"takes {wanted}", code="auth.console_key")


def tenant_for_key(s: Session, key: str) -> str:
    not_a_console_key(key, "the tenant's service API key")
    tenant = s.scalars(select(m.Tenant.id).where(m.Tenant.api_key_hash == hash_secret(key))).first()
    if tenant is None:
        raise AuthError("unknown API key", code="auth.invalid_key")
    return tenant


@dataclass(frozen=True)
class Principal:
    """Who is calling a receiver-side endpoint, and which feed they may read."""

    tenant: str
    kind: ReceiverKind
    id: str
    reader: Reader


def user_only(who: Principal) -> Principal:
    """The caller, when it is a user (a code user's access token is refused: 403)."""
    if who.kind == ReceiverKind.CODE_USER:
        raise Forbidden("this endpoint needs a user token", code="auth.user_required")
    return who


def code_user_only(who: Principal) -> Principal:
    """The caller, when it is a code user (a user token is refused: 403)."""
    if who.kind != ReceiverKind.CODE_USER:
        raise Forbidden("this endpoint needs a code user's access token",
                        code="auth.code_user_required")
    return who


def principal(s: Session, token: str, grace_s: int) -> Principal:
    not_a_console_key(token, "a user token or a code user's access token")
    if token.count(".") == 2:
        return _user(s, token, grace_s)
    return _code_user(s, token)


def _user(s: Session, token: str, grace_s: int) -> Principal:
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthError("malformed user token", code="token.invalid") from None
    tenant = s.get(m.Tenant, str(unverified.get("tenant", "")))
    if tenant is None:
        raise AuthError("invalid user token", code="token.invalid")
    claims = _verify(token, tenant, grace_s)
    user = s.get(m.User, (tenant.id, str(claims["sub"])))
    if user is None or not user.active:
        raise AuthError("the token's user is unknown or inactive", code="token.invalid")
    kind = ReceiverKind(user.kind)
    return Principal(tenant.id, kind, user.id, Reader(tenant.id, kind, user.id))


def _verify(token: str, tenant: m.Tenant, grace_s: int) -> dict[str, Any]:
    secrets = [tenant.signing_secret]
    rotated = tenant.secret_rotated_at
    if tenant.previous_signing_secret and rotated and (
            datetime.now(UTC) - rotated).total_seconds() < grace_s:
        secrets.append(tenant.previous_signing_secret)
    for secret in secrets:
        try:
            return jwt.decode(token, secret, algorithms=[USER_TOKEN_ALGORITHM],
                              options={"require": ["sub", "tenant", "exp"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("the user token has expired", code="token.expired") from None
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid user token: {exc}", code="token.invalid") from None
    raise AuthError("invalid user token signature", code="token.invalid")


def _code_user(s: Session, token: str) -> Principal:
    scope = access.verify(s, token)
    if not scope.valid:
        raise AuthError(f"access token {scope.reason}", code=f"token.{scope.reason}")
    row = scope.row
    assert row is not None
    cutoff = access.cutoff(s, row.tenant_id, row.code_id)
    reader = Reader(row.tenant_id, ReceiverKind.CODE_USER, row.subscription_id,
                    subject=(row.subject_kind, row.subject_id), cutoff=cutoff)
    return Principal(row.tenant_id, ReceiverKind.CODE_USER, row.subscription_id, reader)
