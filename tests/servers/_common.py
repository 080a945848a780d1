"""Shared plumbing for the local test servers: ports, HTTP hosting, waiting."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, TypeVar

LOOPBACK = "127.0.0.1"
T = TypeVar("T")


def free_port(host: str = LOOPBACK) -> int:
    """Return a currently unused TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def b64url_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def wait_for_items(
    cond: threading.Condition, items: Sequence[T], n: int, timeout: float, what: str
) -> list[T]:
    """Block until ``items`` holds at least ``n`` entries; AssertionError on timeout."""
    with cond:
        if not cond.wait_for(lambda: len(items) >= n, timeout):
            raise AssertionError(
                f"expected at least {n} {what} within {timeout}s, got {len(items)}"
            )
        return list(items)


@dataclass(frozen=True)
class HttpRequest:
    """An incoming HTTP request as seen by a service."""

    method: str
    path: str
    headers: Message
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    """What a service answers."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """JSON response with the right content type."""
        all_headers = {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
        return cls(status, json.dumps(payload).encode(), all_headers)

    @classmethod
    def text(cls, status: int, text: str) -> HttpResponse:
        """Plain-text response (used for reasons on errors)."""
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


class _Handler(BaseHTTPRequestHandler):
    """Adapts http.server to ``HttpService.handle``. HTTP/1.1 with keep-alive, as real
    push services and FCM speak it (a connection per request made the local push
    service, not the sender, what a push benchmark measured)."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = HttpRequest(self.command, self.path, self.headers, body)
        try:
            response = self.server.app(request)
        except Exception as exc:  # noqa: BLE001 - a server bug must surface as a 500
            response = HttpResponse.text(500, f"test server error: {exc!r}")
        self._write(response)

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, app: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__((LOOPBACK, port), _Handler)
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close kept-alive connections too: a stopped service must look down."""
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class HttpService:
    """Threaded HTTP server on 127.0.0.1 (free port, kept across stop/start)."""

    host = LOOPBACK

    def __init__(self) -> None:
        self._port: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """Listening port (assigned on first start)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        return self._port

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server is currently accepting connections."""
        return self._server is not None

    def start(self) -> Self:
        """Start serving in a daemon thread (same port as before on restart)."""
        if self._server is not None:
            return self
        self._server = _Server(self._port or 0, self.handle)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the socket (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None:
            thread.join(timeout=5)

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request; implemented by subclasses."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
