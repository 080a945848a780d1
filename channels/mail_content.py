"""Email content: pure functions from a job to a MIME message (no I/O).

Multipart text + HTML from ``channels/templates/email/<lang>/<event type>``
(autoescaped HTML; sandboxed so admins may edit templates), localised dates
(Babel), threading headers per subject, RFC 8058 one-click unsubscribe.
"""

from __future__ import annotations

import email.utils
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from functools import cached_property
from typing import Any

import jinja2
from babel.dates import format_datetime

from channels.base import Job
from router.texts import environment

LABELS: dict[str, dict[str, str]] = {
    "en": {"link_label": "Open {number}", "unsubscribe_label": "Unsubscribe",
           "footer_text": "You receive this email because of your notification settings.",
           "footer_code_user": "You receive this email because you asked to be kept informed.",
           "expiry_text": "This link is valid until {date}."},
    "de": {"link_label": "{number} öffnen", "unsubscribe_label": "Abmelden",
           "footer_text": "Sie erhalten diese E-Mail aufgrund Ihrer Benachrichtigungseinstellungen.",
           "footer_code_user": "Sie erhalten diese E-Mail, weil Sie informiert werden möchten.",
           "expiry_text": "Dieser Link ist gültig bis {date}."},
}


@dataclass(frozen=True)
class MailSettings:
    from_addr: str
    reply_to: str
    domain: str


class MailRenderer:
    """Renders one message per job; templates compiled once per process."""

    def __init__(self) -> None:
        self.env = environment(autoescape=True)

    @cached_property
    def _cache(self) -> dict[tuple[str, str, str], jinja2.Template | None]:
        return {}

    def template(self, lang: str, etype: str, ext: str) -> jinja2.Template:
        key = (lang, etype, ext)
        if key not in self._cache:
            self._cache[key] = self._find(lang, etype, ext)
        found = self._cache[key]
        if found is None:
            found = self.env.get_template(f"email/base.{ext}")
        return found

    def _find(self, lang: str, etype: str, ext: str) -> jinja2.Template | None:
        for candidate in (lang, "en"):
            try:
                return self.env.get_template(f"email/{candidate}/{etype}.{ext}")
            except jinja2.TemplateNotFound:
                continue
        return None

    def context(self, job: Job, link: str, expires_at: datetime | None,
                unsubscribe_url: str, tenant_name: str) -> dict[str, Any]:
        lang = job.content.get("language", "en")
        labels = LABELS.get(lang, LABELS["en"])
        event = job.event
        subject = event.get("subject", {})
        occurred = _parse(event.get("occurred_at"))
        code_user = job.receiver_kind == "code_user"
        return {
            "lang": lang, "title": job.content.get("title", ""),
            "message": job.content.get("message", ""), "link": link,
            "link_label": labels["link_label"].format(number=subject.get("number", "")),
            "expires_at": expires_at,
            "expiry_text": labels["expiry_text"].format(date=_when(expires_at, lang))
            if expires_at else "",
            "unsubscribe_url": unsubscribe_url, "unsubscribe_label": labels["unsubscribe_label"],
            "footer_text": labels["footer_code_user" if code_user else "footer_text"],
            "tenant_name": tenant_name, "subject": subject, "actor": event.get("actor"),
            "data": event.get("data", {}), "event": {"type": event.get("type"),
                                                     "id": event.get("id")},
            "occurred_at": _when(occurred, lang) if occurred else "",
            "receiver": {"kind": job.receiver_kind, "name": job.content.get("name") or ""},
        }

    def build(self, job: Job, ctx: dict[str, Any], cfg: MailSettings) -> EmailMessage:
        etype = job.event.get("type", "")
        msg = EmailMessage()
        msg["Subject"] = _one_line(ctx["title"])
        msg["From"] = cfg.from_addr
        msg["To"] = job.content["email"]
        if cfg.reply_to:
            msg["Reply-To"] = cfg.reply_to
        msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = f"<herald.{job.id}.{secrets.token_hex(6)}@{cfg.domain}>"
        thread = thread_id(job.tenant, ctx["subject"], cfg.domain)
        msg["In-Reply-To"] = thread
        msg["References"] = thread
        msg["List-Unsubscribe"] = f"<{ctx['unsubscribe_url']}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(self.template(ctx["lang"], etype, "txt").render(ctx))
        msg.add_alternative(self.template(ctx["lang"], etype, "html").render(ctx), subtype="html")
        msg["Content-Language"] = ctx["lang"]  # after set_content, which clears Content-*
        return msg


def thread_id(tenant: str, subject: dict[str, Any], domain: str) -> str:
    """A stable id per subject, so every mail about it lands in one thread."""
    return f"<subject.{tenant}.{subject.get('kind')}.{subject.get('id')}@{domain}>"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _when(value: datetime | None, lang: str) -> str:
    if value is None:
        return ""
    try:
        return format_datetime(value, format="long", locale=lang, tzinfo=value.tzinfo)
    except (ValueError, LookupError):
        return format_datetime(value, format="long", locale="en", tzinfo=value.tzinfo)
