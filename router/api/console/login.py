"""Signing in and out of the console."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from router.api.console.base import page, routes
from router.api.console.session import (
    COOKIE,
    AdminDep,
    check_csrf,
    cookie_for,
    form,
    set_cookie,
    sign_in,
)
from router.api.deps import RuntimeDep
from router.core.errors import AuthError

HOME = "/console/rules"


def _next(raw: str | None) -> str:
    """Only a console page of this site: never an open redirect."""
    if raw and raw.startswith("/console/") and "//" not in raw and "\\" not in raw:
        return raw
    return HOME


@routes.get("")
@routes.get("/")
def home() -> Response:
    return RedirectResponse(HOME, status_code=303)


@routes.get("/login")
def login_form(request: Request) -> Response:
    return page(request, "login.html", None, next=_next(request.query_params.get("next")))


@routes.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    fields = await form(request)
    target = _next((fields.get("next") or [""])[0])
    try:
        with runtime.db.session() as s:
            key = sign_in(s, (fields.get("key") or [""])[0])
            cookie = cookie_for(key)
    except AuthError as exc:
        return page(request, "login.html", None, status=exc.status, next=target,
                    error=exc.message)
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, cookie)
    return response


@routes.post("/logout")
async def logout(request: Request, admin: AdminDep) -> Response:
    check_csrf(admin, await form(request))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response
