"""Misbehaving network peers for the adapter contract suite.

The local protocol servers in ``tests/servers`` answer correctly or with a scripted
status. These raw TCP peers do what they cannot: hang up at once, drop a conversation
half-way, or answer bytes that are not the protocol at all. Each listens on 127.0.0.1
and runs one handler per connection in a daemon thread.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from tests.servers._common import LOOPBACK

Handler = Callable[[socket.socket], None]


class RawPeer:
    """A TCP server running ``handler(conn)`` for every connection, then closing it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._sock = socket.create_server((LOOPBACK, 0))
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name=f"RawPeer:{self.port}")

    @property
    def origin(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=5)


def refused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.create_server((LOOPBACK, 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------ handlers


def hang_up(conn: socket.socket) -> None:
    """Accept, then close without a word (a server that dies on connect)."""


def not_tls(conn: socket.socket) -> None:
    """Answer plain text to whatever comes first (a TLS ClientHello gets no ServerHello)."""
    conn.sendall(b"220 plain text, no TLS here\r\n")


def not_smtp(conn: socket.socket) -> None:
    """Greet with another protocol's banner."""
    conn.sendall(b"* OK IMAP4rev1 server ready\r\n")


def _read_until(conn: socket.socket, marker: bytes, buffer: bytes = b"") -> tuple[bytes, bytes]:
    while marker not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionResetError("peer closed")
        buffer += chunk
    head, _, rest = buffer.partition(marker)
    return head, rest


def _read_http_request(conn: socket.socket) -> None:
    head, body = _read_until(conn, b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def http_drop(conn: socket.socket) -> None:
    """Read a whole HTTP request, then close without answering."""
    _read_http_request(conn)


def http_answer(raw: bytes) -> Handler:
    """Read a whole HTTP request, answer ``raw`` verbatim, close."""
    def handler(conn: socket.socket) -> None:
        _read_http_request(conn)
        conn.sendall(raw)
    return handler


def http_response(status: str, body: bytes, content_type: str = "text/html") -> bytes:
    """Well-framed HTTP/1.1 bytes whose body may be anything."""
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def smtp_drop_after_data(conn: socket.socket) -> None:
    """Speak SMTP until the message body is sent, then hang up before the reply."""
    conn.sendall(b"220 peer ESMTP\r\n")
    buffer = b""
    while True:
        line, buffer = _read_until(conn, b"\r\n", buffer)
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            conn.sendall(b"250 peer\r\n")
        elif verb == b"DATA":
            conn.sendall(b"354 go ahead\r\n")
            _read_until(conn, b"\r\n.\r\n", buffer)
            return  # the mail went over the wire; the answer never comes
        else:
            conn.sendall(b"250 OK\r\n")


def resp_answer(reply: bytes) -> Handler:
    """A Redis peer answering ``reply`` to every command (``CLIENT`` gets +OK)."""
    def handler(conn: socket.socket) -> None:
        buffer = b""
        while True:
            command, buffer = _read_resp_command(conn, buffer)
            conn.sendall(b"+OK\r\n" if command[:1] == [b"CLIENT"] else reply)
    return handler


def resp_drop(conn: socket.socket) -> None:
    """A Redis peer that hangs up on the first command that is not a handshake."""
    buffer = b""
    while True:
        command, buffer = _read_resp_command(conn, buffer)
        if command[:1] != [b"CLIENT"]:
            return
        conn.sendall(b"+OK\r\n")


def _read_resp_command(conn: socket.socket, buffer: bytes) -> tuple[list[bytes], bytes]:
    """One RESP array of bulk strings (how redis-py sends every command)."""
    head, buffer = _read_until(conn, b"\r\n", buffer)
    parts: list[bytes] = []
    for _ in range(int(head.lstrip(b"*"))):
        size, buffer = _read_until(conn, b"\r\n", buffer)
        while len(buffer) < int(size.lstrip(b"$")) + 2:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionResetError("peer closed")
            buffer += chunk
        length = int(size.lstrip(b"$"))
        parts.append(buffer[:length].upper() if not parts else buffer[:length])
        buffer = buffer[length + 2:]
    return parts, buffer
