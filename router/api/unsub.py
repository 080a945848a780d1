"""RFC 8058 one-click unsubscribe. GET shows a confirmation (mail scanners fetch
links); POST unsubscribes. The token in the URL is the only credential."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from router import unsubscribe
from router.api.deps import RuntimeDep
from router.api.errors import documented

router = APIRouter(tags=["email"], responses=documented(404, 503))


@router.get("/v1/unsubscribe/{token}", response_class=HTMLResponse)
def confirm(runtime: RuntimeDep, token: str) -> str:
    with runtime.db.session() as s:
        unsubscribe.find(s, token)
    return ("<!doctype html><meta charset=utf-8><title>Unsubscribe</title>"
            "<body style='font:16px system-ui;max-width:32em;margin:3em auto'>"
            "<h1>Unsubscribe from these emails?</h1>"
            f"<form method=post action='/v1/unsubscribe/{escape(token)}'>"
            "<button type=submit>Unsubscribe</button></form>")


@router.post("/v1/unsubscribe/{token}")
def one_click(runtime: RuntimeDep, token: str) -> dict[str, str]:
    with runtime.db.session() as s:
        row = unsubscribe.use(s, token)
        return {"unsubscribed": row.receiver_kind}
