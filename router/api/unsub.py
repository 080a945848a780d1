"""RFC 8058 one-click unsubscribe. GET shows a confirmation (mail scanners fetch
links); POST unsubscribes. The token in the URL is the only credential."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from router.api.deps import RuntimeDep
from router.api.errors import documented
from router.core.errors import NotFound
from router.delivery import unsubscribe

routes = APIRouter(tags=["email"], responses=documented(404, 503))


PAGE = ("<!doctype html><meta charset=utf-8><title>Unsubscribe</title>"
        "<body style='font:16px system-ui;max-width:32em;margin:3em auto'>")
HTML_404: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown or used link (an HTML page)",
                  "content": {"text/html": {"schema": {"type": "string"}}}}}


@routes.get("/v1/unsubscribe/{token}", response_class=HTMLResponse, responses=HTML_404)
def confirm(runtime: RuntimeDep, token: str) -> HTMLResponse:
    try:
        with runtime.db.session() as s:
            unsubscribe.find(s, token)
    except NotFound:  # a person opened the link: answer a page, not JSON
        return HTMLResponse(PAGE + "<h1>This unsubscribe link is not valid.</h1>"
                            "<p>It may have been used already.</p>", status_code=404)
    return HTMLResponse(PAGE + "<h1>Unsubscribe from these emails?</h1>"
                        f"<form method=post action='/v1/unsubscribe/{escape(token)}'>"
                        "<button type=submit>Unsubscribe</button></form>")


@routes.post("/v1/unsubscribe/{token}")
def one_click(runtime: RuntimeDep, token: str) -> dict[str, str]:
    with runtime.db.session() as s:
        row = unsubscribe.use(s, token)
        return {"unsubscribed": row.receiver_kind}
