"""Where Herald may send requests: public addresses only, unless allow-listed.

A push endpoint comes from whoever holds a user token, so it is untrusted input:
without this check anyone could make a worker POST to 127.0.0.1, the cloud
metadata service or the office network (server-side request forgery).

A URL is allowed when
- its scheme is https; plain http only when its host, as written, is on the
  allow-list (by name, or an IP literal inside an allowed network), and
- its host resolves, and either its name is on the allow-list, or every address
  it resolves to is public (``ipaddress``: global, not multicast nor reserved;
  IPv4 carried inside IPv6 is judged as that IPv4) or inside an allowed network.

Allow-list entries (config ``outbound.allow``): a host name or IP address
(``push.corp``, ``127.0.0.1``, ``::1``), optionally with a port (``push.corp:8443``,
``[::1]:8080``), or a network (``10.8.0.0/16``). An entry with a port allows
that port only.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from router.core.enums import Reach

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
DEFAULT_PORTS = {"https": 443, "http": 80}
HOW_TO_ALLOW = "add it to outbound.allow if this is your own push service"


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (raises OSError)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Verdict:
    reach: Reach
    reason: str = ""  # why refused or unresolved, for people
    addresses: tuple[str, ...] = ()  # what was checked: connect to these only

    @property
    def allowed(self) -> bool:
        return self.reach == Reach.ALLOWED


@dataclass(frozen=True)
class Entry:
    """One allow-list entry: a host (name or address) or a network, maybe one port."""

    host: str = ""
    network: Network | None = None
    port: int | None = None

    def names(self, host: str, port: int) -> bool:
        return self.host == host and self.port in (None, port)

    def contains(self, address: IPAddress, port: int) -> bool:
        return (self.network is not None and address.version == self.network.version
                and address in self.network and self.port in (None, port))


def parse_entry(text: str) -> Entry:
    """``host``, ``host:port``, ``[v6]:port``, an IP address or a CIDR network."""
    value = text.strip().lower().rstrip(".")
    if "/" in value:
        return Entry(network=ipaddress.ip_network(value, strict=False))
    host, port = _split_port(value)
    literal = _ip(host)
    if literal is not None:
        return Entry(host=str(literal), network=ipaddress.ip_network(literal), port=port)
    if not host or not all(c.isalnum() or c in "-._" for c in host):
        raise ValueError(f"{text!r} is not a host name, host:port, IP address or network")
    return Entry(host=host, port=port)


def _split_port(value: str) -> tuple[str, int | None]:
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, _port(rest[1:]) if rest.startswith(":") else None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, _port(port)
    return value, None  # a name, an IPv4 address or a bare IPv6 address


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{text!r} is not a port number")
    return int(text)


def is_ip_literal(host: str) -> bool:
    """``host`` is an IP address as written (``[v6]`` brackets allowed), not a name."""
    return _ip(host.strip("[]")) is not None


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def non_public(address: IPAddress) -> str:
    """What kind of non-public address this is ("loopback", "private", ...); "" if public."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is not None:
            return non_public(inner)
    for kind, flag in (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                       ("link-local", address.is_link_local),
                       ("multicast", address.is_multicast), ("reserved", address.is_reserved),
                       ("private", address.is_private)):
        if flag:
            return kind
    return "" if address.is_global else "shared or special-purpose"


class OutboundPolicy:
    """The allow-list plus the resolver; checks URLs and hosts, never connects."""

    def __init__(self, allow: Iterable[str] = (), resolve: Resolver = system_resolve) -> None:
        self.entries = tuple(parse_entry(text) for text in allow)
        self.resolve = resolve

    def check_url(self, url: str) -> Verdict:
        try:
            parts = urlsplit(url)
            port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
        except ValueError:
            return Verdict(Reach.REFUSED, "is not a valid URL")
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            return Verdict(Reach.REFUSED, "must be an https URL")
        return self.check_host(parts.hostname, port, secure=parts.scheme == "https")

    def check_host(self, host: str, port: int, *, secure: bool) -> Verdict:
        """Resolve ``host`` and check every address; ``secure``: the connection uses TLS."""
        host = host.strip("[]").lower().rstrip(".")
        named = any(e.names(host, port) for e in self.entries)
        literal = _ip(host)
        if not secure and not (named or (literal is not None and self._inside(literal, port))):
            return Verdict(Reach.REFUSED, "must be an https URL (plain http only for hosts "
                                          "in outbound.allow)")
        try:
            addresses = (str(literal),) if literal is not None else tuple(self.resolve(host, port))
        except (OSError, UnicodeError) as exc:
            return Verdict(Reach.UNRESOLVED, f"cannot resolve {host}: {_dns_reason(exc)}")
        if not addresses:
            return Verdict(Reach.UNRESOLVED, f"cannot resolve {host}: no address")
        refused = "" if named else self._first_refused(host, literal, addresses, port)
        if refused:
            return Verdict(Reach.REFUSED, refused, addresses)
        return Verdict(Reach.ALLOWED, "", addresses)

    def _inside(self, address: IPAddress, port: int) -> bool:
        return any(e.contains(address, port) for e in self.entries)

    def _first_refused(self, host: str, literal: IPAddress | None, addresses: tuple[str, ...],
                       port: int) -> str:
        for text in addresses:
            address = ipaddress.ip_address(text.partition("%")[0])
            kind = "" if self._inside(address, port) else non_public(address)
            if kind and literal is not None:
                return f"{host} is a {kind} address; {HOW_TO_ALLOW}"
            if kind:
                return f"{host} resolves to a {kind} address {address}; {HOW_TO_ALLOW}"
        return ""


def _dns_reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror) and len(exc.args) > 1:
        return str(exc.args[1])
    return str(exc) or type(exc).__name__


@lru_cache(maxsize=16)
def policy_for(allow: tuple[str, ...]) -> OutboundPolicy:
    """The policy of a configured allow-list (parsed once per process)."""
    return OutboundPolicy(allow)
