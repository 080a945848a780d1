"""Email content: pure functions from a job to the bytes of a MIME message (no I/O).

Multipart text + HTML from ``channels/templates/email/<lang>/<event type>``
(autoescaped HTML; sandboxed so admins may edit templates), localised dates
(Babel), threading headers per subject, RFC 8058 one-click unsubscribe.
"""

from __future__ import annotations

import binascii
import email.policy
import email.utils
import hashlib
import random  # boundaries need uniqueness, not secrecy (no urandom call each)
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import jinja2
from babel.dates import format_datetime

from channels import mail_slots
from router.core.templating import environment
from router.delivery.contracts import Job

if TYPE_CHECKING:
    from email.message import EmailMessage

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


DIGEST = "digest"  # the template of a digest mail (email/<lang>/digest.*)


def _digest(job: Job, lang: str) -> dict[str, Any]:
    """A digest's events for its template: items oldest first, and how many are not listed."""
    digest = job.content.get("digest")
    if not digest:
        return {}
    own_links = job.receiver_kind != "code_user"  # a code user's one link is its access link
    items = [{"title": i["title"], "message": i["message"], "link": i["link"] if own_links else "",
              "when": _when(_parse(i["at"]), lang) if i["at"] else ""} for i in digest["items"]]
    return {"items": items, "count": digest["count"], "more": digest["count"] - len(items)}


@dataclass(frozen=True)
class MailSettings:
    from_addr: str
    reply_to: str
    domain: str


class MailRenderer:
    """Renders one message per job; templates compiled once per process."""

    def __init__(self) -> None:
        self.env = environment(autoescape=True)
        self._plainly: dict[str, bool] = {}  # template name -> prints its slots plainly

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
            **_digest(job, lang),
        }

    def build(self, job: Job, ctx: dict[str, Any], cfg: MailSettings,
              rendered: dict[str, tuple[str, str]] | None = None) -> Mail:
        """The job's mail. ``rendered`` holds the bodies already rendered for a batch,
        by group (channels.mail_slots): a mail of a known group is not rendered again."""
        etype = DIGEST if "digest" in job.content else job.event.get("type", "")
        text, html = self.bodies(ctx["lang"], etype, ctx, {} if rendered is None else rendered)
        return compose(cfg, Envelope(
            job.content.get("email") or "", _one_line(ctx["title"]), ctx["lang"],
            message_id(job.tenant, job.id, cfg.domain),
            thread_id(job.tenant, ctx["subject"], cfg.domain), ctx["unsubscribe_url"]),
            text, html)

    def bodies(self, lang: str, etype: str, ctx: dict[str, Any],
               rendered: dict[str, tuple[str, str]]) -> tuple[str, str]:
        """The text and HTML bodies; a group's are rendered once into ``rendered``."""
        text, html = self.template(lang, etype, "txt"), self.template(lang, etype, "html")
        key = mail_slots.group_key(etype, ctx) if self._plain(text) and self._plain(html) \
            else None
        if key is None:
            return text.render(ctx), html.render(ctx)
        if key not in rendered:
            marked = mail_slots.marked(ctx)
            rendered[key] = text.render(marked), html.render(marked)
        marked_text, marked_html = rendered[key]
        return (mail_slots.fill(marked_text, ctx, html=False),
                mail_slots.fill(marked_html, ctx, html=True))

    def _plain(self, template: jinja2.Template) -> bool:
        name = template.name or ""
        if name not in self._plainly:
            self._plainly[name] = mail_slots.prints_slots_plainly(self.env, name)
        return self._plainly[name]


@dataclass(frozen=True)
class Envelope:
    """The per-mail header values."""

    to: str
    subject: str
    lang: str
    message_id: str
    thread: str
    unsubscribe_url: str


@dataclass(frozen=True)
class Mail:
    """A message ready for ``SMTP.sendmail``: envelope addresses and the exact bytes."""

    sender: str
    recipients: tuple[str, ...]
    message_id: str
    data: bytes
    international: bool = False  # a non-ASCII address: the server must offer SMTPUTF8


def compose(cfg: MailSettings, env: Envelope, text: str, html: str) -> Mail:
    """multipart/alternative (text, HTML), UTF-8, CRLF, written directly: building an
    ``EmailMessage`` and flattening it cost ~6 ms a mail. Text headers are encoded as
    the default policy does (RFC 2047 for non-ASCII); ids and URLs stay on one line."""
    sender, recipients = _address(cfg.from_addr), tuple(_addresses(env.to))
    international = not (sender + "".join(recipients)).isascii()
    policy = UTF8 if international else POLICY
    boundary = f"=_herald_{random.getrandbits(64):016x}"
    head = [_header("Subject", env.subject, policy), _header("From", cfg.from_addr, policy),
            _header("To", env.to, policy)]
    if cfg.reply_to:
        head.append(_header("Reply-To", cfg.reply_to, policy))
    head += [f"Date: {_now()}\r\n".encode(), _raw("Message-ID", env.message_id, policy),
             _raw("In-Reply-To", env.thread, policy), _raw("References", env.thread, policy),
             _raw("List-Unsubscribe", f"<{env.unsubscribe_url}>", policy),
             b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"MIME-Version: 1.0\r\n",
             f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode(),
             _header("Content-Language", env.lang, policy), b"\r\n"]
    marker = f"\r\n--{boundary}".encode()
    parts = [_part("plain", text, marker), _part("html", html, marker)]
    data = b"".join([*head, *(marker[2:] + b"\r\n" + part + b"\r\n" for part in parts),
                     marker[2:] + b"--\r\n"])
    return Mail(sender, recipients, env.message_id, data, international)


if TYPE_CHECKING:
    Policy = email.policy.EmailPolicy[EmailMessage]
POLICY: Policy = email.policy.default.clone(linesep="\r\n")
UTF8: Policy = POLICY.clone(utf8=True)
_SIMPLE_TEXT = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*\Z")
_SIMPLE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/^_`{|}~-]+@[A-Za-z0-9.-]+\Z")
ADDRESS_HEADERS = frozenset({"From", "To", "Reply-To"})


def _header(name: str, value: str, policy: Policy) -> bytes:
    """One header line. Short plain ASCII is written as is (what the policy would
    write); anything else (non-ASCII, long, display names) goes through the policy."""
    simple = _SIMPLE_ADDRESS if name in ADDRESS_HEADERS else _SIMPLE_TEXT
    if len(name) + len(value) <= 76 and "=?" not in value and simple.match(value):
        return f"{name}: {value}\r\n".encode()
    return _folded(name, value, policy)


@lru_cache(maxsize=4096)  # From, Reply-To, a subject per (event, language): few values
def _folded(name: str, value: str, policy: Policy) -> bytes:
    return policy.fold_binary(name, policy.header_store_parse(name, value)[1])


def _raw(name: str, value: str, policy: Policy) -> bytes:
    """Ids and URLs on one line, never folded or RFC 2047-encoded (both break them
    for mail clients: RFC 2369, RFC 5322 §3.6.4); non-ASCII ones as the policy says."""
    if value.isascii() and "\r" not in value and "\n" not in value:
        return f"{name}: {value}\r\n".encode()
    return _folded(name, value, policy)


def _part(subtype: str, text: str, marker: bytes) -> bytes:
    """One text part: 7bit when it is short-lined ASCII, else quoted-printable."""
    lines = text.encode("utf-8").splitlines()
    body = b"\r\n".join(lines) + b"\r\n"
    cte = "7bit"
    if not body.isascii() or max(map(len, lines), default=0) > 78 or marker[2:] in body:
        cte, body = "quoted-printable", b"".join(map(_qp_line, lines))
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + body


@lru_cache(maxsize=4096)  # most lines of a template's output repeat from mail to mail
def _qp_line(line: bytes) -> bytes:
    """Quoted-printable is line-local: one line with its CRLF encodes as in the whole."""
    return binascii.b2a_qp(line + b"\r\n", istext=True)


@lru_cache(maxsize=64)  # the From address of every mail: parsing it was 3% of a worker
def _address(value: str) -> str:
    return email.utils.parseaddr(value)[1] if not _SIMPLE_ADDRESS.match(value) else value


def _addresses(value: str) -> list[str]:
    if _SIMPLE_ADDRESS.match(value):
        return [value]
    return [addr for _, addr in email.utils.getaddresses([value]) if addr]


def _now() -> str:
    return _date(int(time.time()))


@lru_cache(maxsize=4)  # one Date value per second (formatting it was 3% of a worker)
def _date(second: int) -> str:
    return email.utils.format_datetime(datetime.fromtimestamp(second, UTC))  # "+0000"


def message_id(tenant: str, delivery_id: int, domain: str) -> str:
    """The same on every attempt of a delivery, so a receiving system can drop a re-sent
    copy (RFC 5322 §3.6.4); the hash keeps tenants' ids apart on a shared domain."""
    digest = hashlib.sha256(f"{tenant}\0{delivery_id}".encode()).hexdigest()[:12]
    return f"<herald.{delivery_id}.{digest}@{domain}>"


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


@lru_cache(maxsize=1024)  # an event's time and a batch's expiry repeat across receivers
def _when(value: datetime | None, lang: str) -> str:
    if value is None:
        return ""
    try:
        return format_datetime(value, format="long", locale=lang, tzinfo=value.tzinfo)
    except (ValueError, LookupError):
        return format_datetime(value, format="long", locale="en", tzinfo=value.tzinfo)
