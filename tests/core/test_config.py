"""Configuration (router.core.config.load_config): deep links derived from public_url, and a
production set-up that would mail demo or loopback links refused at start-up."""

from __future__ import annotations

import os

import pytest

from router.core.config import load_config
from router.core.errors import ConfigError
from tests.conftest import ROOT

HOST_LINKS = {kind: f"https://app.acme.test/{kind}/{{id}}"
              for kind in ("ticket", "task", "video_session", "code", "device")}


@pytest.fixture(autouse=True)
def no_outside_config(monkeypatch, tmp_path):
    """Only what a test sets: no HERALD_* from the environment, no config file."""
    for name in [n for n in os.environ if n.startswith("HERALD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HERALD_CONFIG", str(tmp_path / "absent.yaml"))


def test_links_default_to_the_demo_page_under_public_url():
    links = load_config(public_url="http://10.1.2.3:8000/").links
    assert links["ticket"] == "http://10.1.2.3:8000/demo/subject/ticket/{id}"
    assert set(links) == {"ticket", "task", "video_session", "code", "device"}


def test_a_configured_link_wins_and_the_kinds_left_out_get_the_default():
    links = load_config(links={"ticket": "https://app.acme.test/t/{id}"}).links
    assert links["ticket"] == "https://app.acme.test/t/{id}"
    assert links["task"] == "http://127.0.0.1:8000/demo/subject/task/{id}"


@pytest.mark.parametrize("production", [{"broker_url": "redis://redis:6379/0"},
                                        {"database_url": "postgresql://herald@db/herald"}])
def test_production_with_only_a_public_url_refuses_to_mail_demo_links(production):
    with pytest.raises(ConfigError) as refused:
        load_config(public_url="https://herald.acme.test", **production)
    message = str(refused.value)
    assert "links.ticket is 'https://herald.acme.test/demo/subject/ticket/{id}'" in message
    assert "the demo page" in message and "HERALD_LINKS__TICKET" in message
    assert "links.device" in message  # every kind still wrong is named


def test_production_refuses_a_link_to_a_loopback_host():
    links = {**HOST_LINKS, "task": "http://localhost:3000/tasks/{id}"}
    with pytest.raises(ConfigError, match=r"links\.task .*a loopback address"):
        load_config(public_url="https://herald.acme.test", broker_url="redis://r/0",
                    links=links)


def test_production_with_host_application_links_starts():
    config = load_config(public_url="https://herald.acme.test", broker_url="redis://r/0",
                         links=HOST_LINKS)
    assert config.links == HOST_LINKS


def test_a_deployment_on_a_loopback_public_url_keeps_the_demo_links():
    config = load_config(public_url="http://127.0.0.1:9000", broker_url="redis://r/0")
    assert config.links["code"] == "http://127.0.0.1:9000/demo/subject/code/{id}"


def test_the_shipped_config_runs_the_demo_as_is_and_refuses_to_go_public_without_links(
        monkeypatch):
    monkeypatch.setenv("HERALD_CONFIG", os.path.join(ROOT, "config.yaml"))
    assert load_config().links["ticket"] == "http://127.0.0.1:8000/demo/subject/ticket/{id}"
    monkeypatch.setenv("HERALD_PUBLIC_URL", "https://herald.acme.test")
    monkeypatch.setenv("HERALD_BROKER_URL", "redis://redis:6379/0")
    with pytest.raises(ConfigError, match="links.ticket"):
        load_config()
    monkeypatch.setenv("HERALD_LINKS__TICKET", "https://app.acme.test/tickets/{id}")
    with pytest.raises(ConfigError, match="links.task"):
        load_config()
