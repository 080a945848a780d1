"""Tenants: creation (API key shown once, stored hashed), secret rotation, user tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from router.core.errors import Conflict, NotFound, Problem, ValidationFailed
from router.core.security import hash_secret, mint_user_token, new_secret
from router.directory.quiet import zone_or_none
from router.store import models as m
from router.store.models import utcnow


@dataclass(frozen=True)
class Created:
    tenant_id: str
    api_key: str
    signing_secret: str


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "tenant"


def create(s: Session, name: str, tenant_id: str | None = None, language: str = "en",
           time_zone: str | None = None) -> Created:
    tid = tenant_id or _slug(name)
    if time_zone is not None and zone_or_none(time_zone) is None:
        raise ValidationFailed([Problem(f"unknown time zone {time_zone!r}: give an IANA "
                                        "name such as 'Europe/Berlin'", path="time_zone")])
    if s.get(m.Tenant, tid) is not None:
        raise Conflict(f"tenant {tid!r} already exists; pick another --id")
    key, secret = new_secret("hk_"), new_secret("hs_")
    s.add(m.Tenant(id=tid, name=name, api_key_hash=hash_secret(key), signing_secret=secret,
                   default_language=language, default_time_zone=time_zone))
    return Created(tid, key, secret)


def new_api_key(s: Session, tenant_id: str) -> str:
    tenant = _tenant(s, tenant_id)
    key = new_secret("hk_")
    tenant.api_key_hash = hash_secret(key)
    return key


def rotate_secret(s: Session, tenant_id: str) -> str:
    tenant = _tenant(s, tenant_id)
    tenant.previous_signing_secret = tenant.signing_secret
    tenant.signing_secret = new_secret("hs_")
    tenant.secret_rotated_at = utcnow()
    return tenant.signing_secret


def user_token(s: Session, tenant_id: str, user_id: str, ttl: timedelta) -> str:
    tenant = _tenant(s, tenant_id)
    if s.get(m.User, (tenant_id, user_id)) is None:
        raise NotFound(f"user {user_id!r} not found in tenant {tenant_id!r}")
    return mint_user_token(tenant.signing_secret, tenant_id, user_id, ttl)


def _tenant(s: Session, tenant_id: str) -> m.Tenant:
    tenant = s.get(m.Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id!r} not found")
    return tenant
