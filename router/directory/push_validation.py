"""Checks on push registrations: endpoints Herald may send to, well-formed P-256 keys."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

from router.core.errors import Problem
from router.core.outbound import policy_for


def _b64url(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("must be base64url") from None


def check_endpoint(url: str) -> str:
    """The shape of an endpoint; where it points is checked by ``endpoint_problems``."""
    parts = urlsplit(url)
    if parts.scheme in ("https", "http") and parts.hostname:
        return url
    raise ValueError("push endpoint must be an https URL")


def endpoint_problems(allow: list[str], url: str, path: str) -> list[Problem]:
    """Why Herald may not send to this endpoint (outbound policy, DNS included); [] if it may."""
    verdict = policy_for(tuple(allow)).check_url(url)
    return [] if verdict.allowed else [Problem(verdict.reason, path=path)]


def check_keys(p256dh: str, auth: str) -> None:
    point = _b64url(p256dh)
    if len(point) != 65 or point[0] != 4:
        raise ValueError("keys.p256dh must be a 65-byte uncompressed P-256 point (base64url)")
    if len(_b64url(auth)) != 16:
        raise ValueError("keys.auth must be 16 bytes (base64url)")
