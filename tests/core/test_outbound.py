"""The outbound URL policy (router.core.outbound), pure: a fake resolver stands in for DNS,
so no name here is ever looked up and nothing is ever connected to."""

from __future__ import annotations

import socket

import pytest

from router.core.config import load_config
from router.core.enums import Reach
from router.core.errors import ConfigError
from router.core.outbound import OutboundPolicy, non_public, parse_entry

FAKE_DNS = {
    "push.example.com": ["142.250.74.10", "2a00:1450:4001:82b::200a"],
    "rebind.example.com": ["127.0.0.1"],
    "split.example.com": ["142.250.74.10", "10.1.2.3"],
    "corp-push.internal": ["10.8.0.5"],
    "metadata.example.com": ["169.254.169.254"],
}


def fake_resolve(host: str, _port: int) -> list[str]:
    if host not in FAKE_DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return FAKE_DNS[host]


def policy(*allow: str) -> OutboundPolicy:
    return OutboundPolicy(allow, resolve=fake_resolve)


@pytest.mark.parametrize("url, kind", [
    ("https://127.0.0.1/push", "loopback"),
    ("https://127.8.9.10:8443/push", "loopback"),
    ("https://[::1]/push", "loopback"),
    ("https://10.0.0.1/push", "private"),
    ("https://172.16.5.4/push", "private"),
    ("https://192.168.1.1/push", "private"),
    ("https://[fc00::1]/push", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[fe80::1]/push", "link-local"),
    ("https://224.0.0.1/push", "multicast"),
    ("https://[ff02::1]/push", "multicast"),
    ("https://0.0.0.0/push", "unspecified"),
    ("https://[::]/push", "unspecified"),
    ("https://240.0.0.1/push", "reserved"),
    ("https://100.64.0.1/push", "shared or special-purpose"),
    ("https://[::ffff:127.0.0.1]/push", "loopback"),
    ("https://[::ffff:10.0.0.1]/push", "private"),
    ("https://[2002:7f00:1::]/push", "loopback"),  # 6to4 wrapping 127.0.0.1
])
def test_an_address_that_is_not_public_is_refused_and_named(url, kind):
    verdict = policy().check_url(url)
    assert verdict.reach == Reach.REFUSED
    assert f"is a {kind} address" in verdict.reason
    assert "add it to outbound.allow" in verdict.reason


def test_a_name_is_judged_by_what_it_resolves_to():
    assert policy().check_url("https://push.example.com/send/1").allowed
    verdict = policy().check_url("https://rebind.example.com/send/1")
    assert verdict.reach == Reach.REFUSED
    assert verdict.reason.startswith("rebind.example.com resolves to a loopback address 127.0.0.1")
    metadata = policy().check_url("https://metadata.example.com/")
    assert "link-local address 169.254.169.254" in metadata.reason


def test_every_address_of_a_name_must_be_public_not_just_the_first():
    verdict = policy().check_url("https://split.example.com/send/1")
    assert verdict.reach == Reach.REFUSED and "private address 10.1.2.3" in verdict.reason


def test_localhost_is_refused_through_the_real_resolver():
    verdict = OutboundPolicy().check_url("https://localhost:9999/push")
    assert verdict.reach == Reach.REFUSED and "resolves to a loopback address" in verdict.reason


def test_a_name_that_does_not_resolve_is_unresolved_not_refused():
    verdict = policy().check_url("https://nowhere.example.com/send/1")
    assert verdict.reach == Reach.UNRESOLVED
    assert verdict.reason == "cannot resolve nowhere.example.com: Name or service not known"


def test_a_public_address_is_allowed_and_the_checked_addresses_are_returned():
    verdict = policy().check_url("https://push.example.com/send/1")
    assert verdict.allowed
    assert verdict.addresses == ("142.250.74.10", "2a00:1450:4001:82b::200a")
    assert policy().check_url("https://[::ffff:8.8.8.8]/x").allowed  # IPv4 in IPv6, public


@pytest.mark.parametrize("url", ["http://push.example.com/send/1", "http://8.8.8.8/push",
                                 "ftp://push.example.com/x", "push.example.com/x", "https:///x",
                                 "https://push.example.com:99999/x"])
def test_only_https_urls_with_a_host_are_allowed(url):
    assert policy().check_url(url).reach == Reach.REFUSED


def test_plain_http_is_refused_before_any_lookup():
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError(f"looked up {host}")

    verdict = OutboundPolicy(resolve=no_dns).check_url("http://push.example.com/send/1")
    assert verdict.reason == "must be an https URL (plain http only for hosts in outbound.allow)"


def test_an_allow_listed_address_may_be_used_over_http_and_https():
    allow = policy("127.0.0.1")
    assert allow.check_url("http://127.0.0.1:8080/push/1").allowed
    assert allow.check_url("https://127.0.0.1/push/1").allowed
    assert not allow.check_url("https://127.0.0.2/push/1").allowed


def test_an_allow_listed_name_may_resolve_anywhere_but_other_names_may_not():
    allow = policy("corp-push.internal")
    assert allow.check_url("http://corp-push.internal/push").allowed
    assert allow.check_url("https://CORP-PUSH.internal./push").allowed
    assert not allow.check_url("https://rebind.example.com/x").allowed


def test_an_allowed_network_admits_names_resolving_into_it_over_https_only():
    allow = policy("10.8.0.0/16")
    assert allow.check_url("https://corp-push.internal/push").allowed
    assert allow.check_url("http://10.8.1.2/push").allowed  # an address written in the URL
    assert not allow.check_url("http://corp-push.internal/push").allowed  # http: host as written
    assert not allow.check_url("https://10.9.0.1/push").allowed


def test_an_entry_with_a_port_allows_that_port_only():
    allow = policy("127.0.0.1:8080", "[::1]:9090")
    assert allow.check_url("http://127.0.0.1:8080/x").allowed
    assert not allow.check_url("http://127.0.0.1:6379/x").allowed
    assert allow.check_url("http://[::1]:9090/x").allowed
    assert not allow.check_url("https://[::1]/x").allowed


@pytest.mark.parametrize("text", ["push service", "10.0.0.0/33", "host:port", "[::1]:0", "a/b"])
def test_a_malformed_allow_entry_is_refused_at_start_up_naming_the_key(text):
    with pytest.raises(ValueError):
        parse_entry(text)
    with pytest.raises(ConfigError, match="outbound.allow"):
        load_config(outbound={"allow": [text]})


def test_the_allow_list_can_come_from_the_environment_as_a_json_list(monkeypatch):
    monkeypatch.setenv("HERALD_OUTBOUND__ALLOW", '["127.0.0.1", "10.8.0.0/16"]')
    assert load_config().outbound.allow == ["127.0.0.1", "10.8.0.0/16"]


def test_the_default_allow_list_is_empty():
    assert load_config().outbound.allow == []


def test_public_addresses_have_no_kind():
    import ipaddress

    for text in ("8.8.8.8", "142.250.74.10", "2a00:1450:4001:82b::200a", "::ffff:1.1.1.1"):
        assert non_public(ipaddress.ip_address(text)) == ""
