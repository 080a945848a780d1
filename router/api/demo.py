"""The demo's pages: the local mailbox (mails the demo's SMTP catcher saved) and a
stand-in for the host application's subject page that deep links open."""

from __future__ import annotations

import email
import email.policy
from html import escape
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

MAILBOX = Path("mailbox")  # where `herald demo --serve`'s mail catcher saves each mail

routes = APIRouter(prefix="/demo", include_in_schema=False)


@routes.get("/mailbox", response_class=HTMLResponse)
def mailbox() -> str:
    return _page("Demo mailbox", [
        f"<article><h3>{escape(m['subject'])}</h3><p><b>To:</b> {escape(m['to'])} "
        f"&middot; {escape(m['date'])}</p><pre>{escape(m['text'])}</pre></article>"
        for m in listing(MAILBOX)] or ["<p>No mail yet.</p>"])


@routes.get("/subject/{kind}/{subject_id}", response_class=HTMLResponse)
def subject_page(kind: str, subject_id: str) -> str:
    return _page(f"{kind} {subject_id}", [
        f"<p>This stands in for the host application's page of {escape(kind)} "
        f"<b>{escape(subject_id)}</b> (a deep link from a notification).</p>"])


def _page(title: str, parts: list[str]) -> str:
    style = ("body{font:15px system-ui;max-width:800px;margin:2em auto;color:#222}"
             "article{border:1px solid #ddd;border-radius:8px;padding:0 1em;margin:1em 0}"
             "pre{white-space:pre-wrap}")
    return (f"<!doctype html><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{style}</style><h1>{escape(title)}</h1>" + "".join(parts))


def listing(folder: Path, limit: int = 50) -> list[dict[str, str]]:
    files = sorted(folder.glob("*.eml"), reverse=True)[:limit] if folder.exists() else []
    out = []
    for file in files:
        msg = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        out.append({"file": file.name, "to": str(msg["To"]), "subject": str(msg["Subject"]),
                    "date": str(msg["Date"]), "text": body.get_content() if body else ""})
    return out
