"""pytest fixtures for the local servers.

Enable them from a conftest with ``pytest_plugins = ["tests.servers.fixtures"]``
(root conftest only) or ``from tests.servers.fixtures import smtp_sink  # noqa: F401``.
Each fixture is function-scoped: a fresh server per test, stopped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fcm import FcmService
from .smtp import SmtpSink
from .webpush import PushService


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
