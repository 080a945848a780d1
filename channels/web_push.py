"""Web push requests on one event loop: aiohttp, kept-alive connections, a bounded number
in flight.

A worker thread encrypts its batch (pywebpush) and hands the requests to
:meth:`WebPushSender.post_all`, which runs them on the sender's own loop thread and
returns, per request, an :class:`Answer` or the transport error, in order. One thread
drives every connection, so the GIL is not handed between sending threads on each
socket call (decision 81). Connections obey the outbound policy
(channels/guarded_http.py); redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import certifi

from channels.guarded_http import GuardedResolver, OutboundRefused, checked_before_request
from router.core.enums import Reach
from router.core.outbound import OutboundPolicy


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Answer:
    """A push service's answer, read in full."""

    status: int
    reason: str
    headers: Mapping[str, str]
    text: str


class NotAttempted(Exception):
    """The batch's time ran out before this request started."""


class Unreachable(Exception):
    """No answer: the connection failed, timed out or the name did not resolve."""


Result = Answer | OutboundRefused | NotAttempted | Unreachable


class WebPushSender:
    """One loop thread and one aiohttp session, opened at the first batch."""

    def __init__(self, policy: OutboundPolicy, concurrency: int, timeout_s: float) -> None:
        self.policy = policy
        self.concurrency = max(1, concurrency)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.proxies = urllib.request.getproxies()  # once: aiohttp's trust_env reads ~/.netrc
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="herald-web-push")
        self._thread.start()

    def post_all(self, requests: list[Request], deadline: float) -> list[Result]:
        """POST each request; those not started by ``deadline`` (monotonic) are NotAttempted."""
        future = asyncio.run_coroutine_threadsafe(self._post_all(requests, deadline), self._loop)
        return future.result()

    def close(self) -> None:
        """Close the connections and end the loop thread."""
        if self._loop.is_closed():
            return
        if self._session is not None:
            asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _post_all(self, requests: list[Request], deadline: float) -> list[Result]:
        session = self._session or self._open()
        slots = asyncio.Semaphore(self.concurrency)
        return list(await asyncio.gather(*(self._post(session, slots, r, deadline)
                                           for r in requests)))

    def _open(self) -> aiohttp.ClientSession:
        tls = ssl.create_default_context(cafile=certifi.where())
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.policy), ssl=tls,
                                         limit=self.concurrency)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                              timeout=self.timeout)
        return self._session

    async def _post(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore,
                    request: Request, deadline: float) -> Result:
        async with slots:
            if time.monotonic() >= deadline:
                return NotAttempted("not attempted: the batch ran out of time")
            proxy = self._proxy(request.url)
            if checked_before_request(request.url, proxy is not None):
                verdict = self.policy.check_url(request.url)
                if verdict.reach == Reach.REFUSED:
                    return OutboundRefused(verdict.reason)
                if verdict.reach == Reach.UNRESOLVED:
                    return Unreachable(verdict.reason)
            try:
                async with session.post(request.url, data=request.body,
                                        headers=dict(request.headers), proxy=proxy,
                                        allow_redirects=False) as response:
                    text = await response.text(errors="replace")
                    return Answer(response.status, response.reason or "",
                                  dict(response.headers), text)
            except OutboundRefused as exc:
                return exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Unreachable(str(exc) or type(exc).__name__)

    def _proxy(self, url: str) -> str | None:
        if not self.proxies:
            return None
        parts = urlsplit(url)
        proxy = self.proxies.get(parts.scheme)
        if proxy is None or urllib.request.proxy_bypass(parts.hostname or ""):
            return None
        return proxy
