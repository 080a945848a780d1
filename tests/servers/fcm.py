"""Local FCM HTTP v1 endpoint plus the OAuth2 token endpoint google-auth talks to.

- ``POST /token``: RFC 7523 JWT-bearer grant. The RS256 assertion must verify with the
  key of an account made by ``service_account_info``; ``aud`` may be this ``token_uri``
  or ``https://oauth2.googleapis.com/token`` (google-auth always sends the latter,
  whatever ``token_uri`` says); ``scope`` must include firebase.messaging.
- ``POST /v1/projects/{project}/messages:send``: bearer token check (401
  UNAUTHENTICATED), project check (403 PERMISSION_DENIED), body validation (400
  INVALID_ARGUMENT), then the scripted reply for the device token (default 200).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._common import HttpRequest, HttpResponse, HttpService, wait_for_items

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME = 3600
SEND_PATH_RE = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# FCM errorCode -> (HTTP status, google.rpc status, default message)
FCM_ERRORS: dict[str, tuple[int, str, str]] = {
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for sending to this device."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
    "UNSPECIFIED_ERROR": (500, "UNKNOWN", "Unknown error."),
}
MESSAGE_FIELDS = frozenset(
    {"token", "notification", "data", "android", "apns", "webpush", "fcm_options"}
)
NOTIFICATION_FIELDS = frozenset({"title", "body", "image"})
RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})


@dataclass(frozen=True)
class FcmReply:
    """A scripted answer for one send: an FCM ``errorCode`` or ``"OK"``."""

    error_code: str
    retry_after: int | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.error_code != "OK" and self.error_code not in FCM_ERRORS:
            raise ValueError(f"unknown FCM error code {self.error_code!r}")


@dataclass(frozen=True)
class FcmAttempt:
    """Any messages:send request and what it got."""

    project_id: str
    token: str | None
    status: int
    error_code: str | None
    message: dict[str, Any] | None
    name: str | None = None
    received_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class _Account:
    client_email: str
    private_key_id: str
    project_id: str
    public_key: rsa.RSAPublicKey


class _InvalidError(Exception):
    """Body validation failure (400 INVALID_ARGUMENT)."""

    def __init__(self, field_path: str, description: str) -> None:
        super().__init__(description)
        self.field_path = field_path
        self.description = description


class FcmService(HttpService):
    """FCM v1 + OAuth2 token endpoint; records deliveries and attempts."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._accounts: dict[str, _Account] = {}
        self._access_tokens: dict[str, tuple[str, float]] = {}
        self._scripts: dict[str, deque[FcmReply]] = {}
        self._unregistered: set[str] = set()
        self.token_requests = 0
        self.delivered: list[dict[str, Any]] = []
        self.attempts: list[FcmAttempt] = []

    @property
    def base_url(self) -> str:
        """Root URL, i.e. where ``/v1/projects/...`` lives."""
        return self.origin

    @property
    def token_uri(self) -> str:
        """OAuth2 token endpoint URL."""
        return f"{self.origin}/token"

    def send_url(self, project_id: str = "herald-test") -> str:
        """Full messages:send URL for ``project_id``."""
        return f"{self.origin}/v1/projects/{project_id}/messages:send"

    def service_account_info(self, project_id: str = "herald-test") -> dict[str, str]:
        """A service-account JSON dict with a fresh RSA key, trusted by this server."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        account = _Account(
            client_email=f"herald-{secrets.token_hex(4)}@{project_id}.iam.gserviceaccount.com",
            private_key_id=secrets.token_hex(20),
            project_id=project_id,
            public_key=key.public_key(),
        )
        with self._cond:
            self._accounts[account.client_email] = account
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": account.private_key_id,
            "private_key": _pem(key),
            "client_email": account.client_email,
            "client_id": str(secrets.randbits(64)),
            "token_uri": self.token_uri,
        }

    def script(self, token: str, replies: Iterable[FcmReply]) -> None:
        """Queue replies for device ``token``; used in order, then default success."""
        with self._cond:
            self._scripts.setdefault(token, deque()).extend(replies)

    def unregister(self, token: str) -> None:
        """Answer UNREGISTERED for device ``token`` from now on."""
        with self._cond:
            self._unregistered.add(token)

    def revoke_tokens(self) -> None:
        """Invalidate every issued access token (next sends get 401)."""
        with self._cond:
            self._access_tokens.clear()

    def clear(self) -> None:
        """Forget recorded deliveries, attempts and the token request count."""
        with self._cond:
            self.delivered.clear()
            self.attempts.clear()
            self.token_requests = 0

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``n`` messages were delivered; return them."""
        return wait_for_items(self._cond, self.delivered, n, timeout, "delivered FCM messages")

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        match = SEND_PATH_RE.match(request.path)
        if request.method == "POST" and match:
            return self._send(match.group(1), request)
        return _google_error(404, "NOT_FOUND", f"{request.method} {request.path} not found")

    # --- OAuth2 token endpoint -------------------------------------------------

    def _token(self, request: HttpRequest) -> HttpResponse:
        with self._cond:
            self.token_requests += 1
        form = dict(urllib.parse.parse_qsl(request.body.decode()))
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type.")
        try:
            account = self._verify_assertion(form.get("assertion", ""))
        except (jwt.PyJWTError, LookupError) as exc:
            return _oauth_error("invalid_grant", f"Invalid JWT: {exc}")
        access_token = f"ya29.test-{secrets.token_urlsafe(24)}"
        with self._cond:
            self._access_tokens[access_token] = (account.project_id, time.time() + TOKEN_LIFETIME)
        body = {"access_token": access_token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}
        return HttpResponse.json(200, body)

    def _verify_assertion(self, assertion: str) -> _Account:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        with self._cond:
            account = self._accounts.get(unverified.get("iss", ""))
        if account is None:
            raise LookupError(f"unknown service account {unverified.get('iss')!r}")
        kid = jwt.get_unverified_header(assertion).get("kid")
        if kid is not None and kid != account.private_key_id:
            raise LookupError(f"unknown key id {kid!r}")
        claims = jwt.decode(
            assertion,
            account.public_key,
            algorithms=["RS256"],
            audience=[self.token_uri, GOOGLE_TOKEN_AUDIENCE],
            issuer=account.client_email,
            leeway=60,
            options={"require": ["iss", "aud", "exp", "iat"]},
        )
        if FCM_SCOPE not in str(claims.get("scope", "")).split():
            raise LookupError(f"scope must include {FCM_SCOPE}")
        return account

    # --- messages:send ---------------------------------------------------------

    def _send(self, project_id: str, request: HttpRequest) -> HttpResponse:
        token_project = self._bearer_project(request.headers.get("Authorization", ""))
        if token_project is None:
            return self._fail(project_id, None, "UNAUTHENTICATED", _unauthenticated())
        if token_project != project_id:
            return self._fail(project_id, None, "PERMISSION_DENIED", _permission_denied(project_id))
        try:
            body = json.loads(request.body)
            _validate_send_body(body)
        except ValueError as exc:
            return self._fail(project_id, None, "INVALID_ARGUMENT", _invalid_json(str(exc)))
        except _InvalidError as exc:
            return self._fail(project_id, None, "INVALID_ARGUMENT", _invalid_argument(exc))
        message: dict[str, Any] = body["message"]
        if body.get("validate_only"):
            return self._ok(project_id, message, deliver=False)
        reply = self._next_reply(message["token"])
        if reply.error_code == "OK":
            return self._ok(project_id, message)
        return self._fail(project_id, message, reply.error_code, _fcm_error(reply))

    def _bearer_project(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self._cond:
            project_id, expires_at = self._access_tokens.get(token.strip(), ("", 0.0))
        return project_id if expires_at > time.time() else None

    def _next_reply(self, token: str) -> FcmReply:
        with self._cond:
            if token in self._unregistered:
                return FcmReply("UNREGISTERED")
            script = self._scripts.get(token)
            return script.popleft() if script else FcmReply("OK")

    def _ok(self, project_id: str, message: dict[str, Any], deliver: bool = True) -> HttpResponse:
        message_id = f"0:{uuid.uuid4().hex}" if deliver else "fake_message_id"
        name = f"projects/{project_id}/messages/{message_id}"
        attempt = FcmAttempt(project_id, message["token"], 200, None, message, name)
        with self._cond:
            if deliver:
                self.delivered.append(message)
            self.attempts.append(attempt)
            self._cond.notify_all()
        return HttpResponse.json(200, {"name": name})

    def _fail(
        self,
        project_id: str,
        message: dict[str, Any] | None,
        error_code: str,
        response: HttpResponse,
    ) -> HttpResponse:
        token = message["token"] if message else None
        attempt = FcmAttempt(project_id, token, response.status, error_code, message)
        with self._cond:
            self.attempts.append(attempt)
            self._cond.notify_all()
        return response


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _validate_send_body(body: Any) -> None:
    """Raise ``_InvalidError`` unless ``body`` is a valid v1 send request for a device token."""
    _require_object(body, "")
    _reject_unknown(body, frozenset({"message", "validate_only"}), "")
    message = body.get("message")
    _require_object(message, "message")
    _reject_unknown(message, MESSAGE_FIELDS, "message")
    token = message.get("token")
    if not isinstance(token, str) or not token:
        raise _InvalidError("message.token", "message.token must be a non-empty string")
    if "notification" in message:
        _validate_notification(message["notification"])
    if "data" in message:
        _validate_data(message["data"])
    for name in ("android", "apns", "webpush", "fcm_options"):
        if name in message:
            _require_object(message[name], f"message.{name}")


def _validate_notification(notification: Any) -> None:
    _require_object(notification, "message.notification")
    _reject_unknown(notification, NOTIFICATION_FIELDS, "message.notification")
    for key, value in notification.items():
        if not isinstance(value, str):
            _raise_not_string(f"message.notification.{key}", value)


def _validate_data(data: Any) -> None:
    _require_object(data, "message.data")
    for index, (key, value) in enumerate(data.items()):
        if key in RESERVED_DATA_KEYS or key.startswith(("google", "gcm")):
            raise _InvalidError(f"message.data[{index}].key", f"Invalid data payload key: {key}")
        if not isinstance(value, str):
            _raise_not_string(f"message.data[{index}].value", value)


def _raise_not_string(path: str, value: Any) -> None:
    raise _InvalidError(path, f"Invalid value at '{path}' (TYPE_STRING), {json.dumps(value)}")


def _require_object(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _InvalidError(path, f"Invalid value at '{path or 'request'}': expected a JSON object")


def _reject_unknown(obj: dict[str, Any], allowed: frozenset[str], path: str) -> None:
    unknown = sorted(obj.keys() - allowed)
    if unknown:
        where = f" at '{path}'" if path else ""
        raise _InvalidError(
            path,
            f'Invalid JSON payload received. Unknown name "{unknown[0]}"{where}: '
            "Cannot find field.",
        )


def _google_error(
    status: int,
    rpc_status: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    if details:
        error["details"] = details
    return HttpResponse.json(status, {"error": error}, headers)


def _fcm_error(reply: FcmReply) -> HttpResponse:
    status, rpc_status, default_message = FCM_ERRORS[reply.error_code]
    retry_after = reply.retry_after
    if retry_after is None and reply.error_code == "QUOTA_EXCEEDED":
        retry_after = 1
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    details: list[dict[str, Any]] = [{"@type": FCM_ERROR_TYPE, "errorCode": reply.error_code}]
    return _google_error(status, rpc_status, reply.message or default_message, details, headers)


def _invalid_argument(exc: _InvalidError) -> HttpResponse:
    violation = {"field": exc.field_path, "description": exc.description}
    details: list[dict[str, Any]] = [
        {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"},
        {"@type": BAD_REQUEST_TYPE, "fieldViolations": [violation]},
    ]
    return _google_error(400, "INVALID_ARGUMENT", exc.description, details)


def _invalid_json(reason: str) -> HttpResponse:
    return _google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {reason}")


def _unauthenticated() -> HttpResponse:
    return _google_error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential.",
    )


def _permission_denied(project_id: str) -> HttpResponse:
    return _google_error(
        403,
        "PERMISSION_DENIED",
        f"Permission 'cloudmessaging.messages.create' denied on resource "
        f"'//cloudresourcemanager.googleapis.com/projects/{project_id}' (or it may not exist).",
    )


def _oauth_error(error: str, description: str) -> HttpResponse:
    return HttpResponse.json(400, {"error": error, "error_description": description})


__all__ = ["FCM_ERRORS", "FCM_SCOPE", "FcmAttempt", "FcmReply", "FcmService"]
