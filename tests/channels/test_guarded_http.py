"""The push channel's HTTP clients (channels/guarded_http.py: the requests session of
FCM, the aiohttp sender of web push) against real servers on loopback: each connects only
to addresses the outbound policy checked, never follows a redirect, and a refused host gets
no connection at all. Names are resolved by a fake
resolver, so nothing here asks a DNS server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from channels.guarded_http import GuardedSession, OutboundRefused
from channels.web_push import Answer, NotAttempted, Request, Result, Unreachable, WebPushSender
from router.core.outbound import OutboundPolicy


class Recorder(ThreadingHTTPServer):
    """Records every request; answers 201, or a redirect to ``redirect_to``."""

    daemon_threads = True

    def __init__(self, host: str, redirect_to: str = "") -> None:
        self.paths: list[str] = []
        self.connections = 0
        self.redirect_to = redirect_to
        super().__init__((host, 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        self.connections += 1
        return super().get_request()

    @property
    def origin(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.paths.append(self.path)
        if self.server.redirect_to:
            self.send_response(307)
            self.send_header("Location", self.server.redirect_to)
        else:
            self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def serving(server: Recorder) -> Iterator[Recorder]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def push_service() -> Iterator[Recorder]:
    yield from serving(Recorder("127.0.0.1"))


@pytest.fixture
def other_service() -> Iterator[Recorder]:
    yield from serving(Recorder("127.0.0.2"))


def resolver(answers: dict[str, list[str]]) -> Any:
    def resolve(host: str, _port: int) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]
    return resolve


def test_a_connection_goes_to_the_address_that_was_checked_not_a_second_lookup(other_service):
    # the system resolver says localhost is 127.0.0.1; the checked answer, 127.0.0.2, wins
    port = other_service.server_address[1]
    policy = OutboundPolicy(["localhost"], resolve=resolver({"localhost": ["127.0.0.2"]}))
    with GuardedSession(policy) as http:
        response = http.post(f"http://localhost:{port}/push/1", data=b"x", timeout=5)
    assert response.status_code == 201 and other_service.paths == ["/push/1"]


def test_a_name_that_now_resolves_to_loopback_is_refused_without_a_connection(push_service):
    port = push_service.server_address[1]
    answers = {"push.example.com": ["142.250.74.10"]}
    policy = OutboundPolicy(resolve=resolver(answers))
    assert policy.check_url(f"https://push.example.com:{port}/push/1").allowed  # registration
    answers["push.example.com"] = ["127.0.0.1"]  # the DNS answer changes (rebinding)
    with GuardedSession(policy) as http, pytest.raises(OutboundRefused) as refused:
        http.post(f"https://push.example.com:{port}/push/1", data=b"x", timeout=5)
    assert "resolves to a loopback address 127.0.0.1" in refused.value.reason
    assert push_service.connections == 0


def test_a_loopback_endpoint_without_an_allow_entry_gets_no_connection(push_service):
    with GuardedSession(OutboundPolicy()) as http, pytest.raises(OutboundRefused):
        http.post(f"{push_service.origin}/push/1", data=b"x", timeout=5)
    assert push_service.connections == 0


def test_a_redirect_is_handed_back_and_never_followed(push_service, other_service):
    push_service.redirect_to = f"{other_service.origin}/internal/admin"
    policy = OutboundPolicy(["127.0.0.1", "127.0.0.2"])
    with GuardedSession(policy) as http:
        response = http.post(f"{push_service.origin}/push/1", data=b"x", timeout=5)
    assert response.status_code == 307
    assert push_service.paths == ["/push/1"] and other_service.connections == 0


def test_a_name_that_does_not_resolve_is_a_connection_error_that_may_be_retried():
    policy = OutboundPolicy(resolve=resolver({}))
    with GuardedSession(policy) as http, pytest.raises(requests.ConnectionError,
                                                        match="cannot resolve push.example.com"):
        http.post("https://push.example.com/push/1", data=b"x", timeout=5)


# ====================================================================== the web push sender
# The same guarantees through aiohttp (channels/web_push.py), which resolves host names
# through GuardedResolver and never asks it about IP literals.


def post(policy: OutboundPolicy, url: str) -> Result:
    sender = WebPushSender(policy, concurrency=2, timeout_s=5)
    try:
        [result] = sender.post_all([Request(url, b"x", {})], time.monotonic() + 5)
    finally:
        sender.close()
    return result


def test_the_sender_connects_to_the_address_that_was_checked(other_service):
    port = other_service.server_address[1]
    policy = OutboundPolicy(["localhost"], resolve=resolver({"localhost": ["127.0.0.2"]}))
    answer = post(policy, f"http://localhost:{port}/push/1")
    assert isinstance(answer, Answer) and answer.status == 201
    assert other_service.paths == ["/push/1"]


def test_the_sender_refuses_a_name_that_now_resolves_to_loopback_without_a_connection(
        push_service):
    port = push_service.server_address[1]
    policy = OutboundPolicy(resolve=resolver({"push.example.com": ["127.0.0.1"]}))
    refused = post(policy, f"https://push.example.com:{port}/push/1")
    assert isinstance(refused, OutboundRefused)
    assert "resolves to a loopback address 127.0.0.1" in refused.reason
    assert push_service.connections == 0


@pytest.mark.parametrize(("scheme", "why"), [
    ("http", "must be an https URL (plain http only for hosts in outbound.allow)"),
    ("https", "127.0.0.1 is a loopback address; add it to outbound.allow")])
def test_the_sender_refuses_a_loopback_literal_without_an_allow_entry(push_service, scheme, why):
    port = push_service.server_address[1]
    refused = post(OutboundPolicy(), f"{scheme}://127.0.0.1:{port}/push/1")
    assert isinstance(refused, OutboundRefused) and why in refused.reason
    assert push_service.connections == 0


def test_the_sender_hands_a_redirect_back_and_never_follows_it(push_service, other_service):
    push_service.redirect_to = f"{other_service.origin}/internal/admin"
    answer = post(OutboundPolicy(["127.0.0.1", "127.0.0.2"]), f"{push_service.origin}/push/1")
    assert isinstance(answer, Answer) and answer.status == 307
    assert push_service.paths == ["/push/1"] and other_service.connections == 0


def test_the_sender_reports_a_name_that_does_not_resolve_as_unreachable():
    unreachable = post(OutboundPolicy(resolve=resolver({})), "https://push.example.com/push/1")
    assert isinstance(unreachable, Unreachable)
    assert "cannot resolve push.example.com" in str(unreachable)


def test_the_sender_starts_nothing_after_the_batch_deadline(push_service):
    sender = WebPushSender(OutboundPolicy(["127.0.0.1"]), concurrency=1, timeout_s=5)
    try:
        late = sender.post_all([Request(f"{push_service.origin}/push/1", b"x", {})],
                               time.monotonic() - 1)
    finally:
        sender.close()
    assert [type(r) for r in late] == [NotAttempted] and push_service.connections == 0
