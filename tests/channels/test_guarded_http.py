"""The push channel's HTTP session (channels/guarded_http.py) against real servers on
loopback: it connects only to addresses the outbound policy checked, never follows a
redirect, and a refused host gets no connection at all. Names are resolved by a fake
resolver, so nothing here asks a DNS server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from channels.guarded_http import GuardedSession, OutboundRefused
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
