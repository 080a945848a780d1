"""Checks on push registrations: https endpoints, well-formed P-256 keys."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from urllib.parse import urlsplit


def _b64url(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("must be base64url") from None


def check_endpoint(url: str) -> str:
    """An endpoint must be https; plain http only on a loopback host (local tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return url
    raise ValueError("push endpoint must be an https URL (http only for loopback hosts)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_keys(p256dh: str, auth: str) -> None:
    point = _b64url(p256dh)
    if len(point) != 65 or point[0] != 4:
        raise ValueError("keys.p256dh must be a 65-byte uncompressed P-256 point (base64url)")
    if len(_b64url(auth)) != 16:
        raise ValueError("keys.auth must be 16 bytes (base64url)")
