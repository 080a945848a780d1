"""Push registrations: endpoints Herald may send to and well-formed keys, with problems that
say where and how to fix them."""

from __future__ import annotations

import base64

import pytest

from router.directory.push_validation import check_endpoint, check_keys, endpoint_problems


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_private_endpoint_is_a_problem_at_its_path_naming_the_fix_unless_allow_listed():
    url = "http://127.0.0.1:9999/push/1"
    [problem] = endpoint_problems([], url, "push_subscription.endpoint")
    assert problem.path == "push_subscription.endpoint"
    assert "outbound.allow" in problem.message
    assert endpoint_problems(["127.0.0.1"], url, "endpoint") == []
    assert endpoint_problems([], "https://142.250.74.10/send/abc", "endpoint") == []


@pytest.mark.parametrize("url", ["ftp://push.example/x", "not a url", "https:///no-host"])
def test_an_endpoint_without_a_web_scheme_and_a_host_is_refused(url):
    with pytest.raises(ValueError, match="https URL"):
        check_endpoint(url)


def test_keys_must_be_an_uncompressed_p256_point_and_a_16_byte_secret():
    point, secret = b64(b"\x04" + b"\x11" * 64), b64(b"\x22" * 16)
    check_keys(point, secret)
    for p256dh, auth, named in ((b64(b"\x04" + b"\x11" * 63), secret, "p256dh"),
                                (b64(b"\x05" + b"\x11" * 64), secret, "p256dh"),
                                (point, b64(b"\x22" * 15), "auth"),
                                ("#not base64#", secret, "base64url")):
        with pytest.raises(ValueError, match=named):
            check_keys(p256dh, auth)
