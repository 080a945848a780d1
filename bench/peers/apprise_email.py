"""Peer for W5 email: apprise sending the same mails to the same local SMTP server.

A fresh ``apprise.Apprise()`` per mail: one reused object throttles itself to one
send per 5.5 s, and a notification service building one per message is how it is
typically used. Plain SMTP: ``mailto://HOST:PORT?mode=insecure&from=...&to=...``.
Needs the `bench` extra (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import time


def available() -> str:
    try:
        import apprise  # noqa: F401
    except ImportError:
        return "apprise not installed: pip install -e '.[bench]'"
    return ""


def url(host: str, port: int, to: str) -> str:
    return (f"mailto://{host}:{port}?mode=insecure&from=herald@localhost"
            f"&to={to}&name=Herald")


def send(host: str, port: int, n: int, title: str, body: str, html: bool = True) -> float:
    """Send N mails, a fresh Apprise object each; returns mails per second."""
    import apprise

    fmt = apprise.NotifyFormat.HTML if html else apprise.NotifyFormat.TEXT
    started = time.perf_counter()
    for i in range(n):
        sender = apprise.Apprise()
        if not sender.add(url(host, port, f"user{i}@bench.example")):
            raise RuntimeError("apprise refused the mailto:// URL")
        if not sender.notify(body=body, title=title, body_format=fmt):
            raise RuntimeError("apprise failed to send (see its log)")
    return n / (time.perf_counter() - started)
