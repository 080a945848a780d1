"""The console's router, its Jinja2 templates and how a page is answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from router.api.console.i18n import LANGUAGES, pick, translate
from router.api.console.session import COOKIE, Admin, SignInRequired
from router.api.errors import herald_error
from router.core.errors import HeraldError

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANG_COOKIE = "herald_console_lang"
routes = APIRouter(prefix="/console", include_in_schema=False)
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)


def language(request: Request) -> str:
    wanted = request.query_params.get("lang")
    if wanted in LANGUAGES:
        return wanted
    return pick(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def page(request: Request, template: str, admin: Admin | None, status: int = 200,
         **context: Any) -> HTMLResponse:
    lang = language(request)

    def t(key: str, **values: object) -> str:
        return translate(lang, key, **values)

    def switch(to: str) -> str:
        query = {k: v for k, v in request.query_params.items() if k != "lang"}
        return f"{request.url.path}?{urlencode({**query, 'lang': to})}"

    html = env.get_template(template).render(
        t=t, lang=lang, admin=admin, path=request.url.path, switch=switch,
        languages=LANGUAGES, **context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/console",
                            samesite="strict", httponly=True)
    return response


# no script or style from anywhere but this page; no framing
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "script-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "") and not request.headers.get(
        "authorization")


async def console_error(request: Request, exc: Exception) -> Response:
    """Console pages answer errors as pages (a missing session: the login form); scripts
    and every other path get the JSON error body."""
    assert isinstance(exc, HeraldError)
    if not request.url.path.startswith("/console") or not wants_html(request):
        return await herald_error(request, exc)
    if isinstance(exc, SignInRequired) and request.method == "GET":
        target = f"/console/login?{urlencode({'next': request.url.path})}"
        response = RedirectResponse(target, status_code=303)
        if request.cookies.get(COOKIE):
            response.delete_cookie(COOKIE, path="/console")
        return response
    title = "not_found" if exc.status == 404 else "refused_title" if exc.status in (401, 403) \
        else "error"
    return page(request, "error.html", None, status=exc.status, title=title, message=exc.message,
                code=exc.code, problems=getattr(exc, "problems", []))


def json_or_page(request: Request, data: dict[str, Any], template: str, admin: Admin,
                 status: int = 200, **context: Any) -> Response:
    """Scripts (Bearer, or Accept: application/json) get the data; browsers the page."""
    if "application/json" in request.headers.get("accept", "") or request.headers.get(
            "authorization"):
        return JSONResponse(data, status_code=status)
    return page(request, template, admin, status=status, **context)
