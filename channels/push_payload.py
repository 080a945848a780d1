"""Push content as pure functions: what a web push or an FCM message carries.

No I/O here. The adapter (``channels/push.py``) builds one :class:`Notice` per
delivery and turns it into bytes for web push or a message dict for FCM.

Size rule: a web push body may be at most 4096 bytes *after* encryption;
aes128gcm adds 103 bytes (86-byte header with the sender's key, a 1-byte
delimiter, a 16-byte tag), so the JSON plaintext must stay at or under 3993
bytes. :func:`fit` keeps it at or under :data:`PLAINTEXT_LIMIT` (3800, leaving
room for padding) by shortening the body with "…", then the title; the link is
never cut, because a cut link does not open anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from router.delivery.contracts import DeliveryContent, StoredEvent

MAX_ENCRYPTED = 4096  # RFC 8030 §7.2: push services must accept at least this
AES128GCM_OVERHEAD = 86 + 1 + 16  # header (salt, rs, idlen, 65-byte key) + delimiter + tag
MAX_PLAINTEXT = MAX_ENCRYPTED - AES128GCM_OVERHEAD  # 3993
PLAINTEXT_LIMIT = 3800
ELLIPSIS = "…"
TOPIC_LENGTH = 32  # RFC 8030 §5.4: at most 32 characters of the base64url alphabet
HIGH = "high"
NORMAL = "normal"


@dataclass(frozen=True)
class Notice:
    """What a receiver sees, in every push flavour."""

    title: str
    body: str
    icon: str  # the subject kind, as in the feed item JSON; the client maps it to an image
    link: str
    id: int  # feed item id, else delivery id
    tag: str  # one per subject: a newer notification replaces the older one
    type: str  # event type

    def web_json(self) -> dict[str, Any]:
        return {"title": self.title, "body": self.body, "icon": self.icon,
                "link": self.link, "id": self.id, "tag": self.tag}


@dataclass(frozen=True)
class PushOptions:
    """How a push travels: lifetime, urgency and the collapsing topic."""

    ttl: int
    urgency: str
    topic: str

    @property
    def high(self) -> bool:
        return self.urgency == HIGH


def notice(content: DeliveryContent, event: StoredEvent, link: str, item_id: int) -> Notice:
    """The notice for one delivery, from its rendered content and its event."""
    subject = event.get("subject", {})
    kind, sid = str(subject.get("kind", "")), str(subject.get("id", ""))
    return Notice(title=str(content.get("title", "")), body=str(content.get("message", "")),
                  icon=kind, link=link, id=item_id, tag=f"{kind}:{sid}",
                  type=str(event.get("type", "")))


def topic(tenant: str, subject_kind: str, subject_id: str) -> str:
    """A stable 32-character base64url Topic per subject (RFC 8030 §5.4)."""
    digest = hashlib.sha256(f"{tenant}\x1f{subject_kind}\x1f{subject_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode("ascii")  # 24 bytes -> 32 chars


def remaining_ttl(ttl: int, created_at: str | None, now: datetime | None = None) -> int | None:
    """Seconds of ``ttl`` left since the notification was made; None once it has run out.

    A TTL of 0 means "now or never" and stays 0.
    """
    if ttl <= 0 or not created_at:
        return max(ttl, 0)
    try:
        created = datetime.fromisoformat(created_at)
    except ValueError:
        return ttl
    age = ((now or datetime.now(UTC)) - created).total_seconds()
    if age >= ttl:
        return None
    return min(ttl, math.ceil(ttl - max(age, 0.0)))


# ------------------------------------------------------------------ web push


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def web_payload(item: Notice) -> bytes:
    return encode(item.web_json())


def fit(item: Notice, limit: int = PLAINTEXT_LIMIT) -> Notice:
    """The notice, shortened so that its web push JSON is at most ``limit`` bytes."""
    if len(web_payload(item)) <= limit:
        return item
    item = _shorten(item, "body", limit)
    if len(web_payload(item)) > limit:
        item = _shorten(item, "title", limit)
    return item


def _shorten(item: Notice, name: str, limit: int) -> Notice:
    """Cut field ``name`` to the longest prefix (plus "…") that fits; "" when none does."""
    text: str = getattr(item, name)
    low, high = 0, len(text)
    while low < high:  # the longest prefix length whose shortened notice still fits
        mid = (low + high + 1) // 2
        if len(web_payload(_with(item, name, _cut(text, mid)))) <= limit:
            low = mid
        else:
            high = mid - 1
    shortened = _with(item, name, _cut(text, low))
    return shortened if len(web_payload(shortened)) <= limit else _with(item, name, "")


def _with(item: Notice, name: str, text: str) -> Notice:
    return replace(item, body=text) if name == "body" else replace(item, title=text)


def _cut(text: str, length: int) -> str:
    if length >= len(text):
        return text
    return text[:length].rstrip() + ELLIPSIS


# ------------------------------------------------------------------ FCM


def fcm_message(token: str, item: Notice, how: PushOptions) -> dict[str, Any]:
    """An FCM HTTP v1 send body for one device token (data values are strings)."""
    return {"message": {
        "token": token,
        "notification": {"title": item.title, "body": item.body},
        "data": {"link": item.link, "id": str(item.id), "type": item.type},
        "android": {"priority": HIGH if how.high else NORMAL, "ttl": f"{how.ttl}s",
                    "collapse_key": how.topic},
        "apns": {"headers": {"apns-priority": "10" if how.high else "5",
                             "apns-collapse-id": how.topic}},
    }}


# ------------------------------------------------------------------ answers


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def label(kind: str, address: str) -> str:
    """A short, log-safe name for a target: never the whole endpoint or token."""
    host = address.split("/")[2] if address.startswith("http") and address.count("/") >= 2 else ""
    return f"{kind} {host}…{address[-6:]}" if host else f"{kind} …{address[-6:]}"
