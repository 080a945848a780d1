"""The embedded default: `herald serve` alone, on SQLite with the in-process broker."""

from __future__ import annotations

import sqlite3

import pytest

from tests.harness import Client, Herald, wait_until
from tests.pipeline.test_service_e2e import seed_directory, ticket
from tests.servers.smtp import SmtpSink

pytestmark = pytest.mark.slow


def create_tenant(herald: Herald) -> str:
    result = herald.cli("tenants", "create", "Embedded Co", "--id", "emb")
    assert result.returncode == 0, result.stdout + result.stderr
    return next(line.split()[2] for line in result.stdout.splitlines()
                if line.startswith("API key"))


def feed_receivers(herald: Herald) -> list[str]:
    with sqlite3.connect(herald.tmp / "herald.db") as db:
        return sorted(r[0] for r in db.execute("select receiver_id from feed_items"))


def test_embedded_mode_routes_a_ticket_end_to_end_on_sqlite(tmp_path):
    herald = Herald(tmp_path, embedded=True, smtp={"port": 1})
    herald.cli("migrate")
    key = create_tenant(herald)
    herald.start_api()
    try:
        with Client(herald.url, key) as client:
            seed_directory(client)
            assert client.post("/v1/events", json=ticket("emb-1")).status_code == 202
            act = client.wait_terminal("emb-1")
            assert {r["id"] for r in act["receivers"]} == {"sup1", "dep1", "creator", "cust2"}
            assert feed_receivers(herald) == ["creator", "cust2", "dep1", "sup1"]
            assert client.post("/v1/events", json=ticket("emb-1")).json()["duplicate"] is True
    finally:
        herald.stop()


def test_a_restarted_embedded_server_delivers_what_was_pending(tmp_path):
    sink = SmtpSink().start()
    sink.stop()  # the mail relay is down when the event arrives
    herald = Herald(tmp_path, embedded=True, smtp={"port": sink.port},
                    delivery={"max_attempts": 50})
    herald.cli("migrate")
    key = create_tenant(herald)
    herald.start_api()
    try:
        with Client(herald.url, key) as client:
            seed_directory(client)
            client.put("/v1/users/sup1", json={"id": "sup1", "email": "sup1@example.com"})
            client.post("/v1/events", json=ticket("pending-1"))
            wait_until(lambda: _email(client, "pending-1").get("attempts", 0) >= 1, 20,
                       what="a failed email attempt")
            assert _email(client, "pending-1")["status"] in ("pending", "sending")
        herald.kill("api")  # SIGKILL: in-memory queue and delayed retries are gone
        sink.start()
        herald.start_api()
        with Client(herald.url, key) as client:
            wait_until(lambda: _email(client, "pending-1").get("status") == "sent", 30,
                       what="the pending email after restart")
        [mail] = sink.wait_for(1)
        assert mail["To"] == "sup1@example.com"
    finally:
        herald.stop()
        sink.stop()


def _email(client: Client, event_id: str) -> dict:
    act = client.activity(event_id)
    return next((d for d in act["deliveries"] if d["channel"] == "email"), {})
