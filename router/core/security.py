"""Secrets and tokens: random generation, hashing (only hashes are stored), user JWTs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

import jwt

USER_TOKEN_ALGORITHM = "HS256"


def new_secret(prefix: str = "", nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def hash_secret(value: str) -> str:
    """SHA-256 of a high-entropy random secret: no salt or slow hash is needed
    because the secret is 256 random bits, not a password; lookups stay O(1)."""
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def mint_user_token(secret: str, tenant: str, user_id: str, ttl: timedelta) -> str:
    now = datetime.now(UTC)
    claims = {"sub": user_id, "tenant": tenant, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=USER_TOKEN_ALGORITHM)
