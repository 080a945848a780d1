"""Local Web Push service: RFC 8030 delivery, RFC 8291 decryption, RFC 8292 VAPID.

Request checks, in order (the first failure answers and is recorded in ``attempts``):
unknown subscription 404; VAPID absent 401 / invalid 403; ``TTL``, ``Urgency``,
``Topic``, ``Content-Encoding`` headers 400; body over 4096 bytes 413; undecryptable
body 400. Then the scripted reply for the endpoint (default 201 + ``Location``).
Only 201 answers add the push to ``delivered``.

VAPID keys for pywebpush: ``vapid_keypair()`` returns the private key as base64url of
the raw 32-byte scalar, which ``pywebpush.webpush(vapid_private_key=...)`` accepts
(py_vapid ``Vapid.from_string`` takes raw or DER base64url; PEM text is *not*
accepted as a string, only as a file path or via ``py_vapid.Vapid.from_pem(bytes)``).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ._common import (
    HttpRequest,
    HttpResponse,
    HttpService,
    b64url_decode,
    b64url_encode,
    wait_for_items,
)

MAX_PAYLOAD = 4096
MAX_VAPID_LIFETIME = 24 * 60 * 60
CLOCK_SKEW = 60
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
PUSH_PATH_RE = re.compile(r"^/push/([A-Za-z0-9_-]+)$")


def public_key_b64url(public_key: ec.EllipticCurvePublicKey) -> str:
    """Uncompressed P-256 point, base64url without padding."""
    return b64url_encode(public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


def vapid_keypair() -> tuple[str, str]:
    """New VAPID key pair: (raw private scalar b64url, uncompressed public point b64url)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private_raw = key.private_numbers().private_value.to_bytes(32, "big")
    return b64url_encode(private_raw), public_key_b64url(key.public_key())


@dataclass(frozen=True)
class Reply:
    """A scripted answer for one push request."""

    status: int
    retry_after: int | None = None
    body: str = ""


@dataclass(frozen=True)
class ReceivedPush:
    """A decrypted push message."""

    subscription_id: str
    endpoint: str
    ttl: int
    urgency: str | None
    topic: str | None
    payload: bytes
    vapid_claims: dict[str, Any]
    vapid_public_key: str
    received_at: float = field(default_factory=time.time)

    def json(self) -> Any:
        """The payload decoded as JSON."""
        return json.loads(self.payload)


@dataclass(frozen=True)
class PushAttempt:
    """Any request to a push endpoint and the status it got."""

    endpoint: str
    status: int
    reason: str
    push: ReceivedPush | None = None


@dataclass
class _Subscription:
    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    script: deque[Reply] = field(default_factory=deque)
    gone: bool = False


class _RejectedError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PushService(HttpService):
    """A push service that decrypts and records what a sender pushes."""

    def __init__(self, expected_vapid_public_key: str | None = None) -> None:
        super().__init__()
        self.expected_vapid_public_key = expected_vapid_public_key
        self._cond = threading.Condition()
        self._subscriptions: dict[str, _Subscription] = {}
        self.delivered: list[ReceivedPush] = []
        self.attempts: list[PushAttempt] = []

    def new_subscription(self) -> dict[str, Any]:
        """Create a subscription; returns browser-style ``subscription_info``."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        sub_id = secrets.token_urlsafe(16)
        endpoint = f"{self.origin}/push/{sub_id}"
        sub = _Subscription(sub_id, endpoint, private_key, secrets.token_bytes(16))
        with self._cond:
            self._subscriptions[sub_id] = sub
        return {
            "endpoint": endpoint,
            "keys": {
                "p256dh": public_key_b64url(private_key.public_key()),
                "auth": b64url_encode(sub.auth_secret),
            },
        }

    def script(self, endpoint: str, replies: Iterable[Reply]) -> None:
        """Queue replies for ``endpoint``; used in order, then default 201."""
        with self._cond:
            self._by_endpoint(endpoint).script.extend(replies)

    def gone(self, endpoint: str) -> None:
        """Answer 410 Gone for ``endpoint`` from now on."""
        with self._cond:
            self._by_endpoint(endpoint).gone = True

    def clear(self) -> None:
        """Forget recorded deliveries and attempts (subscriptions are kept)."""
        with self._cond:
            self.delivered.clear()
            self.attempts.clear()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[ReceivedPush]:
        """Wait until at least ``n`` pushes were delivered (201); return them."""
        return wait_for_items(self._cond, self.delivered, n, timeout, "delivered pushes")

    def handle(self, request: HttpRequest) -> HttpResponse:
        match = PUSH_PATH_RE.match(request.path)
        if request.method != "POST" or match is None:
            return HttpResponse.text(404, "not found")
        with self._cond:
            sub = self._subscriptions.get(match.group(1))
        if sub is None:
            endpoint = f"{self.origin}{request.path}"
            return self._answer(PushAttempt(endpoint, 404, "unknown subscription"))
        try:
            push = self._receive(sub, request)
        except _RejectedError as rejected:
            return self._answer(PushAttempt(sub.endpoint, rejected.status, rejected.reason))
        return self._answer_scripted(sub, push)

    def _by_endpoint(self, endpoint: str) -> _Subscription:
        for sub in self._subscriptions.values():
            if sub.endpoint == endpoint:
                return sub
        raise KeyError(f"no subscription with endpoint {endpoint!r}")

    def _receive(self, sub: _Subscription, request: HttpRequest) -> ReceivedPush:
        claims, vapid_key = self._verify_vapid(request.headers)
        ttl, urgency, topic = _push_headers(request.headers)
        payload = _decrypt(sub, request.headers, request.body)
        return ReceivedPush(sub.id, sub.endpoint, ttl, urgency, topic, payload, claims, vapid_key)

    def _verify_vapid(self, headers: Message) -> tuple[dict[str, Any], str]:
        token, key = _vapid_credentials(headers)
        if self.expected_vapid_public_key and key != self.expected_vapid_public_key:
            raise _RejectedError(403, "VAPID public key does not match the expected key")
        claims = _decode_vapid_jwt(token, key, audience=self.origin)
        if claims["exp"] > time.time() + MAX_VAPID_LIFETIME + CLOCK_SKEW:
            raise _RejectedError(403, "VAPID exp is more than 24 hours ahead")
        sub_claim = claims["sub"]
        if not isinstance(sub_claim, str) or not sub_claim.startswith(("mailto:", "https:")):
            raise _RejectedError(403, "VAPID sub must be a mailto: or https: URI")
        return claims, key

    def _answer_scripted(self, sub: _Subscription, push: ReceivedPush) -> HttpResponse:
        with self._cond:
            reply = Reply(410, body="push subscription has gone") if sub.gone else None
            if reply is None and sub.script:
                reply = sub.script.popleft()
        if reply is None or reply.status == 201:
            return self._deliver(push)
        headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
        self._record(PushAttempt(sub.endpoint, reply.status, "scripted", push))
        return HttpResponse(reply.status, reply.body.encode(), headers)

    def _deliver(self, push: ReceivedPush) -> HttpResponse:
        with self._cond:  # reentrant: delivery and attempt become visible together
            self.delivered.append(push)
            self._record(PushAttempt(push.endpoint, 201, "delivered", push))
        location = f"{self.origin}/message/{uuid.uuid4().hex}"
        return HttpResponse(201, b"", {"Location": location, "TTL": str(push.ttl)})

    def _answer(self, attempt: PushAttempt) -> HttpResponse:
        self._record(attempt)
        return HttpResponse.text(attempt.status, attempt.reason)

    def _record(self, attempt: PushAttempt) -> None:
        with self._cond:
            self.attempts.append(attempt)
            self._cond.notify_all()


def _vapid_credentials(headers: Message) -> tuple[str, str]:
    """(jwt, public key) from ``vapid t=,k=`` or legacy ``WebPush`` + ``Crypto-Key``."""
    auth = headers.get("Authorization")
    if not auth:
        raise _RejectedError(401, "missing VAPID Authorization header")
    scheme, _, rest = auth.strip().partition(" ")
    if scheme.lower() == "vapid":
        params = _params(rest, ",")
        if "t" not in params or "k" not in params:
            raise _RejectedError(401, "vapid Authorization needs t= and k=")
        return params["t"], params["k"]
    if scheme.lower() == "webpush":
        key = _params(headers.get("Crypto-Key", ""), ";,").get("p256ecdsa")
        if not key:
            raise _RejectedError(401, "WebPush Authorization needs Crypto-Key: p256ecdsa=")
        return rest.strip(), key
    raise _RejectedError(401, f"unsupported Authorization scheme {scheme!r}")


def _params(text: str, separators: str) -> dict[str, str]:
    """Parse ``a=1, b=2`` style parameter lists."""
    parts = re.split(f"[{re.escape(separators)}]", text)
    pairs = (part.strip().partition("=") for part in parts)
    return {name.strip(): value.strip() for name, sep, value in pairs if sep}


def _decode_vapid_jwt(token: str, key: str, audience: str) -> dict[str, Any]:
    """Verify the ES256 JWT against ``key``; check aud/exp/sub presence."""
    try:
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64url_decode(key)
        )
    except ValueError as exc:
        raise _RejectedError(403, f"VAPID k is not a P-256 public key: {exc}") from exc
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            public_key,
            algorithms=["ES256"],
            audience=audience,
            options={"require": ["aud", "exp", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise _RejectedError(403, f"invalid VAPID JWT: {exc}") from exc
    return claims


def _push_headers(headers: Message) -> tuple[int, str | None, str | None]:
    """Validate and return (TTL, Urgency, Topic)."""
    ttl_text = headers.get("TTL")
    if ttl_text is None or not ttl_text.strip().isdigit():
        raise _RejectedError(400, f"TTL header must be a non-negative integer, got {ttl_text!r}")
    urgency = headers.get("Urgency")
    if urgency is not None and urgency not in URGENCIES:
        raise _RejectedError(400, f"invalid Urgency {urgency!r}")
    topic = headers.get("Topic")
    if topic is not None and not TOPIC_RE.match(topic):
        raise _RejectedError(400, f"invalid Topic {topic!r} (max 32 base64url characters)")
    return int(ttl_text), urgency, topic


def _decrypt(sub: _Subscription, headers: Message, body: bytes) -> bytes:
    """RFC 8291 aes128gcm decryption with the subscription's keys."""
    if not body:
        return b""
    encoding = headers.get("Content-Encoding")
    if encoding != "aes128gcm":
        raise _RejectedError(400, f"Content-Encoding must be aes128gcm, got {encoding!r}")
    if len(body) > MAX_PAYLOAD:
        raise _RejectedError(413, f"payload of {len(body)} bytes exceeds {MAX_PAYLOAD}")
    try:
        payload: bytes = http_ece.decrypt(
            body, private_key=sub.private_key, auth_secret=sub.auth_secret, version="aes128gcm"
        )
    except Exception as exc:  # http_ece raises several types on bad input
        raise _RejectedError(400, f"cannot decrypt payload: {exc!r}") from exc
    return payload


__all__ = ["PushAttempt", "PushService", "ReceivedPush", "Reply", "vapid_keypair"]
