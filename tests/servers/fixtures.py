"""pytest fixtures for the local servers.

Enable them from a conftest with ``pytest_plugins = ["tests.servers.fixtures"]``
(root conftest only) or ``from tests.servers.fixtures import smtp_sink  # noqa: F401``.
``smtp_sink`` and ``push_service`` are function-scoped: a fresh server per test, stopped
afterwards. ``sink``, ``vapid``, ``web_push`` (checking that VAPID key) and ``fcm`` are module-scoped:
the deployments of a module are configured with them once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fcm import FcmService
from .smtp import SmtpSink
from .webpush import PushService, vapid_keypair


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A running SMTP sink."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def push_service() -> Iterator[PushService]:
    """A running Web Push service (any VAPID key accepted)."""
    with PushService() as service:
        yield service


@pytest.fixture
def fcm_service() -> Iterator[FcmService]:
    """A running FCM v1 + OAuth2 token service."""
    with FcmService() as service:
        yield service


@pytest.fixture(scope="module")
def vapid() -> tuple[str, str]:
    """A VAPID key pair (private, public) for a module's deployments."""
    return vapid_keypair()


@pytest.fixture(scope="module")
def web_push(vapid: tuple[str, str]) -> Iterator[PushService]:
    """A Web Push service that accepts only pushes signed with ``vapid``."""
    with PushService(expected_vapid_public_key=vapid[1]) as service:
        yield service


@pytest.fixture(scope="module")
def fcm() -> Iterator[FcmService]:
    """A local FCM HTTP v1 + OAuth2 token server."""
    with FcmService() as service:
        yield service


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    """An SMTP sink shared by a module's tests (its deployments are configured with it once;
    each test clears it or counts its own mails)."""
    with SmtpSink() as server:
        yield server
