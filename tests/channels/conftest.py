"""Fixtures the channel tests share: the mail renderer and the text catalogue, loaded once
per module."""

from __future__ import annotations

import pytest

from channels.mail_content import MailRenderer
from router.routing.texts import TextCatalogue


@pytest.fixture(scope="module")
def renderer() -> MailRenderer:
    return MailRenderer()


@pytest.fixture(scope="module")
def catalogue() -> TextCatalogue:
    return TextCatalogue()
