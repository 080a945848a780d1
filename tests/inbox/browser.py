"""Headless Debian Chromium driven by Playwright for Python (never `playwright install`).

Skipped only when /usr/bin/chromium is missing outside CI; in CI (env CI set) a
missing browser fails the test instead, so the browser tests cannot silently vanish.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def require_chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing in CI: run `make browser-deps` (apt-get install "
                    "chromium)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing: run `make browser-deps` to run the browser tests")


@contextmanager
def chromium(executable: str) -> Iterator[Any]:
    """A running headless browser; closed (with Playwright) on the way out."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a loaded CI machine is slow, not broken
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def png(width: int = 40, height: int = 40, rgb: tuple[int, int, int] = (245, 158, 11)) -> bytes:
    """A solid-colour PNG, for stand-in avatar images."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw)
            + chunk(b"IEND", b""))


def watch_errors(page: Any) -> list[str]:
    """Every uncaught exception and console error of the page, as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    return errors


def watch_frames(page: Any) -> list[dict]:
    """Every websocket frame the page receives, decoded."""
    frames: list[dict] = []
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: frames.append(json.loads(payload))))
    return frames


def wait_for(page: Any, check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    """Poll while letting Playwright deliver its events (sync API)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(50)
