"""A thin FCM HTTP v1 client: service-account OAuth token, cached and shared.

One :class:`FcmClient` per adapter holds one google-auth credentials object.
google-auth keeps the access token until shortly before it expires; a lock
makes sure that many worker threads needing a token trigger one refresh, and a
401 triggers at most one forced refresh per send. HTTP goes through the
caller's ``requests.Session`` (one per batch).

Answers become :class:`~router.delivery.contracts.Outcome` values here; google-auth and
requests exceptions never leave this module:

    200                                   -> sent (provider_ref = message name)
    UNREGISTERED, INVALID_ARGUMENT (token) -> gone: drop the token
    QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL,
    other 429 / 5xx, connection errors    -> retry (Retry-After honoured)
    401                                   -> refresh the token once and resend;
                                             still 401 -> retry later
    SENDER_ID_MISMATCH, THIRD_PARTY_AUTH_ERROR,
    INVALID_ARGUMENT (message), other 4xx  -> permanent failure
    FCM or token URL outside outbound policy -> permanent failure (start-up refuses it too)
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import requests
from google.auth import exceptions as google_errors
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from channels.guarded_http import OutboundRefused
from channels.push_payload import label, parse_retry_after
from router.core.config import FcmConfig
from router.core.enums import OutcomeStatus, Reach
from router.core.errors import ConfigError, OutboundConfigError
from router.core.outbound import OutboundPolicy
from router.delivery.contracts import Outcome

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TRANSIENT_CODES = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL", "UNSPECIFIED_ERROR"})
GONE_CODES = frozenset({"UNREGISTERED"})
PERMANENT_CODES = frozenset({"INVALID_ARGUMENT", "SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR"})
HOW_TO_FIX = ("set fcm.service_account_file (HERALD_FCM__SERVICE_ACCOUNT_FILE) to the "
              "Firebase service-account key file, or put the key JSON itself in "
              "HERALD_FCM__SERVICE_ACCOUNT_JSON")


def load(cfg: FcmConfig, outbound: OutboundPolicy) -> FcmClient | None:
    """The client for this config; None when FCM is not configured; ConfigError when broken
    (OutboundConfigError when a URL points where the outbound policy forbids)."""
    info = _account_info(cfg)
    if info is None:
        return None
    for key in ("project_id", "client_email", "private_key", "token_uri"):
        if not info.get(key):
            raise ConfigError(f"the FCM service-account key has no {key!r}: {HOW_TO_FIX}")
    _check_url(outbound, "fcm.base_url", cfg.base_url)
    _check_url(outbound, "the FCM service-account key's token_uri", str(info["token_uri"]))
    try:
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[SCOPE])
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the FCM service-account key is unusable ({exc}): "
                          f"{HOW_TO_FIX}") from None
    return FcmClient(credentials, str(info["project_id"]), cfg.base_url, cfg.timeout_s)


def _check_url(outbound: OutboundPolicy, key: str, url: str) -> None:
    """Refuse a non-public URL at start-up; a name that does not resolve now is left to
    send time (a retry there), so a DNS hiccup does not stop the worker."""
    verdict = outbound.check_url(url)
    if verdict.reach == Reach.REFUSED:
        raise OutboundConfigError(f"{key} {url} is refused: {verdict.reason}")


def _account_info(cfg: FcmConfig) -> dict[str, Any] | None:
    if cfg.service_account_json.strip():
        source, text = "HERALD_FCM__SERVICE_ACCOUNT_JSON", cfg.service_account_json
    elif cfg.service_account_file:
        source = cfg.service_account_file
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read fcm.service_account_file {source}: "
                              f"{exc.strerror}") from None
    else:
        return None
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{source} is not JSON ({exc}): {HOW_TO_FIX}") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(f"{source} is not a service-account key (\"type\": "
                          f"\"service_account\"): {HOW_TO_FIX}")
    return info


class FcmClient:
    """Sends one message per call; shares one cached OAuth token across threads."""

    def __init__(self, credentials: service_account.Credentials, project_id: str,
                 base_url: str, timeout_s: float) -> None:
        self.credentials = credentials
        self.project_id = project_id
        self.url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def send(self, http: requests.Session, body: dict[str, Any]) -> Outcome:
        token = str(body["message"]["token"])
        try:
            access = self.access_token(http)
            response = self._post(http, access, body)
            if response.status_code == 401 and _error_code(response) != "THIRD_PARTY_AUTH_ERROR":
                response = self._post(http, self.access_token(http, stale=access), body)
        except google_errors.RefreshError as exc:
            return _refresh_failed(exc)
        except OutboundRefused as exc:
            return Outcome.failed(f"{label('fcm', token)}: not sent: {exc.reason}")
        except (requests.RequestException, google_errors.TransportError) as exc:
            return Outcome.retry(f"{label('fcm', token)}: cannot reach FCM: {exc}")
        return answer(token, response)

    def access_token(self, http: requests.Session, stale: str | None = None) -> str:
        """The cached token; refreshed when expired, or when it is ``stale`` (got a 401)."""
        with self._lock:
            creds = self.credentials
            if not creds.valid or (stale is not None and creds.token == stale):
                try:
                    creds.refresh(Request(http))  # type: ignore[no-untyped-call]
                except (TypeError, ValueError) as exc:  # google-auth indexes a non-JSON body
                    raise google_errors.RefreshError(  # type: ignore[no-untyped-call]
                        f"the token endpoint's answer is malformed ({exc})", retryable=True
                    ) from exc
            return str(creds.token)

    def _post(self, http: requests.Session, access: str, body: dict[str, Any]
              ) -> requests.Response:
        return http.post(self.url, json=body, timeout=self.timeout_s,
                         headers={"Authorization": f"Bearer {access}"})


def answer(token: str, response: requests.Response) -> Outcome:
    """Translate one messages:send answer into an outcome for this token."""
    name = label("fcm", token)
    if response.status_code == 200:
        return Outcome.sent(f"{name}: accepted", provider_ref=_json(response).get("name"))
    code = _error_code(response)
    detail = f"{name}: {response.status_code} {code}: {_error_message(response)}"
    if code in GONE_CODES or (code == "INVALID_ARGUMENT" and _about_token(response)):
        return Outcome(OutcomeStatus.GONE, detail, gone=(token,))
    if code in PERMANENT_CODES:
        return Outcome.failed(detail)
    if code in TRANSIENT_CODES or response.status_code in (401, 429) \
            or response.status_code >= 500:
        return Outcome.retry(detail, parse_retry_after(response.headers.get("Retry-After")))
    return Outcome.failed(detail)


def _refresh_failed(exc: google_errors.RefreshError) -> Outcome:
    detail = f"FCM refused the service-account credentials: {exc}"
    if getattr(exc, "retryable", False):
        return Outcome.retry(detail)
    return Outcome.failed(f"{detail} ({HOW_TO_FIX})")


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error(response: requests.Response) -> dict[str, Any]:
    error = _json(response).get("error")
    return error if isinstance(error, dict) else {}


def _error_code(response: requests.Response) -> str:
    """The FCM errorCode from ``details``, else the google.rpc status."""
    error = _error(response)
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status") or "UNKNOWN")


def _error_message(response: requests.Response) -> str:
    return str(_error(response).get("message") or response.reason or "")[:300]


def _about_token(response: requests.Response) -> bool:
    """INVALID_ARGUMENT names the token unless a field violation points elsewhere."""
    fields = [v.get("field", "") for d in _error(response).get("details") or []
              if isinstance(d, dict) for v in d.get("fieldViolations") or []
              if isinstance(v, dict)]
    return not fields or any(f == "message.token" for f in fields)
