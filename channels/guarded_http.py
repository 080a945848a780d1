"""HTTP clients that connect only where the outbound policy allows: a requests session
(FCM, OAuth tokens) and an aiohttp resolver (web push, channels/web_push.py).

Each new connection resolves its host once, checks every address with
:class:`router.core.outbound.OutboundPolicy` and connects to an address it checked,
so a DNS answer that changes between check and connect (rebinding) cannot point
a push at 127.0.0.1. TLS still verifies the certificate for the host name.
Redirects are never followed: a push service that redirects gets its 3xx back.

A refused host raises :class:`OutboundRefused` (not an OSError, so neither urllib3
nor requests wraps or retries it); a name that does not resolve raises urllib3's
``NameResolutionError`` like any DNS failure (a transient ``ConnectionError``).
Through a proxy (``HTTPS_PROXY``) the proxy resolves the name: the URL is checked
right before each request instead, which leaves the proxy's own lookup unchecked.

aiohttp hands every host name to :class:`GuardedResolver`, which answers with the
addresses the policy checked (or raises); it never asks the resolver about an IP literal,
so those, like plain http and proxied URLs, are checked before the request
(:func:`checked_before_request`).
"""

from __future__ import annotations

import asyncio
import socket
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests
from aiohttp.abc import AbstractResolver, ResolveResult
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from router.core.enums import Reach
from router.core.outbound import OutboundPolicy, Verdict, is_ip_literal


class OutboundRefused(Exception):
    """The policy forbids this host: permanent, never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _checked_conn(conn: HTTPConnection, policy: OutboundPolicy, secure: bool,
                  connect: Any) -> socket.socket:
    """Connect ``conn`` to the first reachable address the policy allowed for its host."""
    verdict = policy.check_host(conn.host, conn.port, secure=secure)
    if verdict.reach == Reach.REFUSED:
        raise OutboundRefused(verdict.reason)
    if verdict.reach == Reach.UNRESOLVED:
        raise NameResolutionError(conn.host, conn, socket.gaierror(verdict.reason))
    name = conn._dns_host  # noqa: SLF001 - urllib3 resolves this name; we pin it
    last: Exception | None = None
    try:
        for address in verdict.addresses:
            conn._dns_host = address  # noqa: SLF001
            try:
                return connect()  # type: ignore[no-any-return]
            except (NewConnectionError, ConnectTimeoutError) as exc:
                last = exc
    finally:
        conn._dns_host = name  # noqa: SLF001
    assert last is not None
    raise last


def _pool_classes(policy: OutboundPolicy) -> dict[str, type[HTTPConnectionPool]]:
    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _checked_conn(self, policy, False, super()._new_conn)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _checked_conn(self, policy, True, super()._new_conn)

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}


class GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: OutboundPolicy, **kw: Any) -> None:
        self.policy = policy
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.policy)

    def send(self, request: requests.PreparedRequest, *args: Any, **kw: Any
             ) -> requests.Response:
        if select_proxy(str(request.url), kw.get("proxies") or {}):
            _raise_unless_allowed(self.policy.check_url(str(request.url)))
        return super().send(request, *args, **kw)


def _raise_unless_allowed(verdict: Verdict) -> None:
    if verdict.reach == Reach.REFUSED:
        raise OutboundRefused(verdict.reason)
    if verdict.reach == Reach.UNRESOLVED:
        raise requests.ConnectionError(verdict.reason)


class GuardedSession(requests.Session):
    """A session whose every connection obeys ``policy``; redirects are not followed."""

    def __init__(self, policy: OutboundPolicy, pool_maxsize: int = 10) -> None:
        super().__init__()
        self.max_redirects = 0
        for scheme in ("https://", "http://"):
            self.mount(scheme, GuardedAdapter(policy, pool_maxsize=pool_maxsize))

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None  # hand the 3xx to the caller: a push must not go anywhere else


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for host names: the policy's checked addresses, or an error.

    A refused host raises :class:`OutboundRefused`, which aiohttp lets through; a name that
    does not resolve raises ``socket.gaierror``, which aiohttp reports as a DNS error."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        check = partial(self.policy.check_host, host, port, secure=True)
        verdict = await asyncio.get_running_loop().run_in_executor(None, check)
        if verdict.reach == Reach.REFUSED:
            raise OutboundRefused(verdict.reason)
        if verdict.reach == Reach.UNRESOLVED:
            raise socket.gaierror(socket.EAI_NONAME, verdict.reason)
        return [_result(host, address, port) for address in verdict.addresses]

    async def close(self) -> None:
        """Nothing held: lookups run in the loop's default executor."""


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0,
                         flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)


def checked_before_request(url: str, proxied: bool) -> bool:
    """Whether ``url`` must pass ``policy.check_url`` before an aiohttp request: aiohttp
    resolves only https host names itself (through :class:`GuardedResolver`)."""
    parts = urlsplit(url)
    return proxied or parts.scheme != "https" or is_ip_literal(parts.hostname or "")
