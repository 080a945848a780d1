"""Self-tests: each local server driven by a real client library."""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2 import service_account
from py_vapid import Vapid, Vapid01
from pywebpush import WebPushException, webpush

from . import fixtures
from .fcm import FCM_ERROR_TYPE, FCM_SCOPE, FcmReply, FcmService
from .smtp import SmtpSink
from .webpush import PushService, Reply, vapid_keypair

SUB = "mailto:ops@example.com"

# Exercise the shared fixtures module (a conftest would use pytest_plugins instead).
smtp_sink = fixtures.smtp_sink
push_service = fixtures.push_service
fcm_service = fixtures.fcm_service

# --- SMTP ----------------------------------------------------------------------


def _email(to: str = "user@example.org", subject: str = "Héllo ✓") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "herald@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("plain body ü")
    message.add_alternative("<p>html body</p>", subtype="html")
    return message


def _smtp(sink: SmtpSink) -> smtplib.SMTP:
    return smtplib.SMTP(sink.host, sink.port, local_hostname="localhost", timeout=5)


def test_smtp_receives_and_parses(smtp_sink: SmtpSink) -> None:
    with _smtp(smtp_sink) as client:
        client.send_message(_email())

    [message] = smtp_sink.wait_for(1)
    assert message["Subject"] == "Héllo ✓"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content() == "plain body ü\n"
    [envelope] = smtp_sink.envelopes
    assert envelope.mail_from == "herald@example.com"
    assert envelope.rcpt_tos == ("user@example.org",)
    assert b"Subject:" in envelope.raw


def test_smtp_reject_recipient_at_rcpt(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject("Gone@Example.org")
    with _smtp(smtp_sink) as client:
        refused = client.sendmail("a@example.com", ["gone@example.org", "ok@example.org"], "x")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as excinfo:
            client.send_message(_email(to="gone@example.org"))

    assert refused == {"gone@example.org": (550, b"5.1.1 no such user")}
    assert excinfo.value.recipients["gone@example.org"][0] == 550
    assert [e.rcpt_tos for e in smtp_sink.envelopes] == [("ok@example.org",)]


def test_smtp_fail_next_transient(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(2)
    with _smtp(smtp_sink) as client:
        for _ in range(2):
            with pytest.raises(smtplib.SMTPDataError) as excinfo:
                client.send_message(_email())
            assert excinfo.value.smtp_code == 451
        client.send_message(_email())

    assert len(smtp_sink.wait_for(1)) == 1


def test_smtp_down_and_back_on_same_port(smtp_sink: SmtpSink) -> None:
    port = smtp_sink.port
    smtp_sink.stop()
    with pytest.raises(ConnectionRefusedError):
        _smtp(smtp_sink)
    smtp_sink.start()
    smtp_sink.restart()
    assert smtp_sink.port == port
    with _smtp(smtp_sink) as client:
        client.send_message(_email())
    assert len(smtp_sink.wait_for(1)) == 1


def test_smtp_stop_drops_open_connections(smtp_sink: SmtpSink) -> None:
    client = _smtp(smtp_sink)
    try:
        client.ehlo()
        smtp_sink.stop()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
    finally:
        client.close()


def test_smtp_wait_for_timeout_and_clear() -> None:
    with SmtpSink() as sink:
        with _smtp(sink) as client:
            client.send_message(_email())
        sink.wait_for(1)
        sink.clear()
        with pytest.raises(AssertionError, match="expected at least 1 SMTP messages"):
            sink.wait_for(1, timeout=0.05)
    assert not sink.running


# --- Web Push --------------------------------------------------------------------


def _push(sub: dict[str, Any], data: str, key: str | Vapid01, **kwargs: Any) -> requests.Response:
    claims = {"sub": SUB, **kwargs.pop("claims", {})}  # fresh dict: pywebpush mutates it
    response: requests.Response = webpush(
        sub, data, vapid_private_key=key, vapid_claims=claims, **kwargs
    )
    return response


def _push_status(sub: dict[str, Any], data: str, key: str | Vapid01, **kwargs: Any) -> int:
    try:
        return _push(sub, data, key, **kwargs).status_code
    except WebPushException as exc:
        assert exc.response is not None
        return int(exc.response.status_code)


def test_webpush_round_trip_with_pywebpush() -> None:
    private_key, public_key = vapid_keypair()
    with PushService(expected_vapid_public_key=public_key) as service:
        sub = service.new_subscription()
        response = _push(
            sub,
            json.dumps({"title": "hi", "n": 1}),
            private_key,
            ttl=60,
            headers={"Urgency": "high", "Topic": "t1"},
        )
        [push] = service.wait_for(1)

    assert response.status_code == 201
    assert response.headers["Location"].startswith(service.origin + "/message/")
    assert push.json() == {"title": "hi", "n": 1}
    assert (push.ttl, push.urgency, push.topic) == (60, "high", "t1")
    assert push.endpoint == sub["endpoint"]
    assert push.vapid_public_key == public_key
    assert push.vapid_claims["sub"] == SUB
    assert push.vapid_claims["aud"] == service.origin


def test_webpush_legacy_webpush_scheme(push_service: PushService) -> None:
    sub = push_service.new_subscription()
    private_key, _ = vapid_keypair()
    assert _push_status(sub, "legacy", Vapid01.from_string(private_key)) == 201
    assert push_service.wait_for(1)[0].payload == b"legacy"


def test_webpush_restart_keeps_port_and_subscriptions(push_service: PushService) -> None:
    private_key, _ = vapid_keypair()
    sub = push_service.new_subscription()
    origin = push_service.origin
    push_service.stop()
    with pytest.raises(requests.ConnectionError):  # pywebpush does not wrap it
        _push(sub, "down", private_key)
    push_service.start()

    assert push_service.origin == origin
    assert _push_status(sub, "up", private_key) == 201


def test_webpush_scripted_replies_and_gone(push_service: PushService) -> None:
    private_key, _ = vapid_keypair()
    sub = push_service.new_subscription()
    push_service.script(sub["endpoint"], [Reply(429, retry_after=1), Reply(500)])

    with pytest.raises(WebPushException) as excinfo:
        _push(sub, "a", private_key)
    assert excinfo.value.response is not None
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "1"
    assert _push_status(sub, "b", private_key) == 500
    assert _push_status(sub, "c", private_key) == 201
    push_service.gone(sub["endpoint"])
    assert _push_status(sub, "d", private_key) == 410
    assert _push_status(sub, "e", private_key) == 410

    assert [p.payload for p in push_service.delivered] == [b"c"]
    assert [a.status for a in push_service.attempts] == [429, 500, 201, 410, 410]
    assert push_service.attempts[0].push is not None  # decrypted even when refused


def test_webpush_bad_vapid_rejected() -> None:
    private_key, public_key = vapid_keypair()
    other_key, _ = vapid_keypair()
    with PushService(expected_vapid_public_key=public_key) as service:
        sub = service.new_subscription()
        statuses = [
            _push_status(sub, "x", other_key),
            _push_status(sub, "x", private_key, claims={"aud": "https://evil.example"}),
            _push_status(sub, "x", private_key, claims={"exp": int(time.time()) + 2 * 86400}),
            _push_status(sub, "x", private_key, claims={"sub": "https://example.com"}),
        ]
        unsigned = requests.post(sub["endpoint"], data=b"x", headers={"TTL": "0"}, timeout=5)

    assert statuses == [403, 403, 403, 201]
    assert unsigned.status_code == 401 and "missing VAPID" in unsigned.text
    assert len(service.delivered) == 1


def test_webpush_rejects_bad_requests(push_service: PushService) -> None:
    private_key, _ = vapid_keypair()
    sub = push_service.new_subscription()
    signer = Vapid.from_string(private_key)
    base = {
        **signer.sign({"sub": SUB, "aud": push_service.origin}),
        "Content-Encoding": "aes128gcm",
    }
    expired = signer.sign({"sub": SUB, "aud": push_service.origin, "exp": int(time.time()) - 5})
    with httpx.Client() as client:
        no_ttl = client.post(sub["endpoint"], content=b"junk", headers=base)
        garbage = client.post(sub["endpoint"], content=b"junk", headers={**base, "TTL": "5"})
        unknown = client.post(push_service.origin + "/push/nope", headers={"TTL": "5"})
        stale = client.post(sub["endpoint"], headers={**expired, "TTL": "5"})
    too_big = _push_status(sub, "x" * 5000, private_key)

    assert (no_ttl.status_code, garbage.status_code, unknown.status_code) == (400, 400, 404)
    assert "TTL" in no_ttl.text and "decrypt" in garbage.text
    assert too_big == 413
    assert stale.status_code == 403 and "expired" in stale.text
    assert push_service.delivered == []


# --- FCM -------------------------------------------------------------------------


def _credentials(service: FcmService) -> service_account.Credentials:
    info = service.service_account_info()
    credentials: service_account.Credentials = (
        service_account.Credentials.from_service_account_info(info, scopes=[FCM_SCOPE])
    )
    return credentials


def _refresh(credentials: service_account.Credentials) -> str:
    """Refresh through google-auth's requests transport; return the access token."""
    with requests.Session() as session:
        credentials.refresh(Request(session))
    assert isinstance(credentials.token, str)
    return credentials.token


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """One HTTP client per test (creating clients is comparatively slow)."""
    with httpx.Client(timeout=5) as client:
        yield client


def _send(
    http: httpx.Client, service: FcmService, token: str, message: dict[str, Any]
) -> httpx.Response:
    body = {"message": {"token": "device-1", **message}}
    headers = {"Authorization": f"Bearer {token}"}
    return http.post(service.send_url(), json=body, headers=headers)


def test_fcm_google_auth_refresh_and_send(fcm_service: FcmService, http: httpx.Client) -> None:
    credentials = _credentials(fcm_service)
    token = _refresh(credentials)
    with requests.Session() as session:
        headers: dict[str, str] = {}
        credentials.before_request(Request(session), "POST", fcm_service.send_url(), headers)
    assert fcm_service.token_requests == 1  # valid token is cached by google-auth
    assert headers["authorization"] == f"Bearer {token}"

    message = {"notification": {"title": "T", "body": "B"}, "data": {"k": "v"}}
    response = _send(http, fcm_service, token, message)

    assert response.status_code == 200
    assert response.json()["name"].startswith("projects/herald-test/messages/")
    assert fcm_service.wait_for(1) == [{"token": "device-1", **message}]


def test_fcm_scripted_errors(fcm_service: FcmService, http: httpx.Client) -> None:
    credentials = _credentials(fcm_service)
    token = _refresh(credentials)
    fcm_service.script(
        "device-1", [FcmReply("UNAVAILABLE", retry_after=1), FcmReply("QUOTA_EXCEEDED")]
    )
    first = _send(http, fcm_service, token, {})
    second = _send(http, fcm_service, token, {})
    third = _send(http, fcm_service, token, {})
    fcm_service.unregister("device-1")
    gone = _send(http, fcm_service, token, {})

    assert (first.status_code, first.headers["Retry-After"]) == (503, "1")
    assert (second.status_code, second.headers["Retry-After"]) == (429, "1")
    assert third.status_code == 200
    assert gone.status_code == 404
    assert gone.json()["error"]["status"] == "NOT_FOUND"
    [detail] = gone.json()["error"]["details"]
    assert detail == {"@type": FCM_ERROR_TYPE, "errorCode": "UNREGISTERED"}
    assert [a.error_code for a in fcm_service.attempts] == [
        "UNAVAILABLE",
        "QUOTA_EXCEEDED",
        None,
        "UNREGISTERED",
    ]
    assert len(fcm_service.delivered) == 1


def test_fcm_rejects_bad_auth_and_bodies(fcm_service: FcmService, http: httpx.Client) -> None:
    credentials = _credentials(fcm_service)
    token = _refresh(credentials)

    bad_data = _send(http, fcm_service, token, {"data": {"n": 1}})
    unknown_field = _send(http, fcm_service, token, {"bogus": True})
    bad_token = _send(http, fcm_service, "ya29.forged", {})
    fcm_service.revoke_tokens()
    revoked = _send(http, fcm_service, token, {})

    assert bad_data.status_code == 400
    assert bad_data.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "message.data[0].value" in bad_data.json()["error"]["message"]
    assert unknown_field.status_code == 400
    assert bad_token.status_code == revoked.status_code == 401
    assert bad_token.json()["error"]["status"] == "UNAUTHENTICATED"
    assert fcm_service.delivered == []


def test_fcm_token_endpoint_rejects_unknown_key(fcm_service: FcmService) -> None:
    info = fcm_service.service_account_info()
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    forged = {**info, "private_key": pem}
    credentials = service_account.Credentials.from_service_account_info(forged, scopes=[FCM_SCOPE])
    with pytest.raises(RefreshError, match="invalid_grant"):
        _refresh(credentials)
    assert fcm_service.token_requests == 1
