"""Who is using the console: a console key, sent once through the login form and then
carried by a signed, short-lived session cookie (HttpOnly, SameSite=Strict, Secure on
https), or sent as ``Authorization: Bearer`` by a script.

The cookie is ``<key id>.<expiry>.<nonce>.<signature>``, signed (HMAC-SHA256) with the
key's own session secret: a revoked key's sessions end at once. A cookie session's
state-changing requests carry a CSRF token, an HMAC of the session's nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from router.api.auth import bearer
from router.api.deps import RuntimeDep
from router.core.errors import AuthError, Forbidden, HeraldError
from router.core.security import same
from router.directory import console_keys
from router.store import models as m
from router.store.models import utcnow

COOKIE = "herald_console"
SESSION_S = 2 * 3600  # a console session lasts two hours, then the key is asked again
API_KEY_PREFIX = "hk_"


class SignInRequired(AuthError):
    """No console session: a page answers with the login form, an endpoint with 401."""

    code = "console.sign_in"


@dataclass(frozen=True)
class Admin:
    """A tenant admin using the console."""

    tenant: str
    key_id: int
    csrf: str  # "" for a Bearer caller: no cookie, no cross-site request to guard
    tenant_name: str


def _sign(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def cookie_for(key: m.ConsoleKey, now: float | None = None) -> str:
    body = f"{key.id}.{int((now or time.time()) + SESSION_S)}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_sign(key.session_secret, body)}"


def csrf_token(key: m.ConsoleKey, cookie: str) -> str:
    nonce = cookie.split(".")[2]
    return _sign(key.session_secret, f"csrf.{nonce}")[:40]


def set_cookie(response: Response, request: Request, value: str) -> None:
    secure = request.url.scheme == "https" or str(
        request.app.state.runtime.config.public_url).startswith("https")
    response.set_cookie(COOKIE, value, max_age=SESSION_S, path="/console", httponly=True,
                        samesite="strict", secure=secure)


def refuse_other_credentials(token: str) -> None:
    """The service API key and user tokens never open the console."""
    if token.startswith(API_KEY_PREFIX):
        raise Forbidden("this is a service API key; the console takes a console key "
                        "(herald console-key create --tenant <tenant>)", code="console.api_key")
    if token.count(".") == 2:
        raise Forbidden("this is a user token; the console takes a console key "
                        "(herald console-key create --tenant <tenant>)", code="console.user_token")
    if not console_keys.looks_like(token):
        raise AuthError("not a console key (console keys start with hc_)",
                        code="console.invalid_key")


def sign_in(s: Session, token: str) -> m.ConsoleKey:
    refuse_other_credentials(token.strip())
    key = console_keys.verify(s, token.strip())
    key.last_used_at = utcnow()
    return key


def _from_cookie(s: Session, raw: str) -> tuple[m.ConsoleKey, str]:
    parts = raw.split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        raise SignInRequired("the console session cookie is malformed: sign in again")
    key = console_keys.live(s, int(parts[0]))
    body = ".".join(parts[:3])
    if key is None or not same(_sign(key.session_secret, body), parts[3]):
        raise SignInRequired("the console session is not valid (or its key was revoked)")
    if int(parts[1]) < time.time():
        raise SignInRequired("the console session expired: sign in again")
    return key, csrf_token(key, raw)


def _tenant_name(s: Session, tenant: str) -> str:
    row = s.get(m.Tenant, tenant)
    return row.name if row else tenant


def current_admin(request: Request, runtime: RuntimeDep) -> Admin:
    with runtime.db.session() as s:
        if request.headers.get("authorization"):
            token = bearer(request)
            refuse_other_credentials(token)
            key, csrf = console_keys.verify(s, token), ""
        else:
            raw = request.cookies.get(COOKIE)
            if not raw:
                raise SignInRequired("sign in with a console key")
            key, csrf = _from_cookie(s, raw)
        return Admin(key.tenant_id, key.id, csrf, _tenant_name(s, key.tenant_id))


AdminDep = Annotated[Admin, Depends(current_admin)]


async def form(request: Request) -> dict[str, list[str]]:
    """An url-encoded form body (the console sends no multipart)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def check_csrf(admin: Admin, fields: dict[str, list[str]]) -> None:
    """A cookie session's POST must carry the session's CSRF token."""
    if not admin.csrf:
        return
    sent = (fields.get("csrf") or [""])[0]
    if not same(sent, admin.csrf):
        raise CsrfRefused("the form's CSRF token is missing or not this session's: reload the "
                          "page and try again")


class CsrfRefused(HeraldError):
    status = 403
    code = "console.csrf"
