"""Operating Herald: hot reload in a running service, metrics, logs (the rules CLI:
tests/cli/test_rules_commands.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from websockets.sync.client import connect

from router.core.security import mint_user_token
from tests.conftest import ROOT, RULES
from tests.harness import Client, Herald, wait_until

HERALD = [sys.executable, "-m", "router.cli"]


def herald(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HERALD, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_an_embedded_service_deploys_a_rule_edit_and_refuses_a_broken_one(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    deployment = Herald(tmp_path, embedded=True, rules_path=str(rules), smtp={"port": 1})
    deployment.cli("migrate")
    created = deployment.cli("tenants", "create", "Ops", "--id", "ops")
    key = next(line.split()[2] for line in created.stdout.splitlines()
               if line.startswith("API key"))
    deployment.start_api()
    event = {"id": "h1", "type": "device.created",
             "subject": {"kind": "device", "id": "D-1", "number": "D-1"}}
    try:
        with Client(deployment.url, key) as client:
            client.put("/v1/users/watcher", json={"id": "watcher"})

            def explained() -> tuple[set[str], int]:
                plan = client.post("/v1/events:explain", json=event).json()
                return {r["id"] for r in plan["receivers"]}, plan["rules_version"]

            assert explained() == (set(), 1)
            (rules / "extra.yaml").write_text(
                "rules:\n  - {id: devices-to-watcher, when: {type: device.created}, "
                "receivers: [{users: [watcher]}]}\n")
            wait_until(lambda: explained() == ({"watcher"}, 2), 15, 0.3, what="the new rule")
            time.sleep(1.1)  # a distinct mtime
            (rules / "extra.yaml").write_text("rules: [\n")
            wait_until(lambda: "rules.deploy_refused" in deployment.log("api"), 15,
                       what="the refusal in the log")
            assert "extra.yaml:2:1: YAML syntax" in deployment.log("api")
            assert explained() == ({"watcher"}, 2)
            newest = deployment.cli("rules", "history").stdout.splitlines()[0].split()
            assert newest[0] == "2" and newest[3] == "file_edit" and newest[-2:] == ["(in", "force)"]
    finally:
        deployment.stop()


@pytest.mark.slow
def test_metrics_add_up_across_api_and_worker_processes(tmp_path, pg, new_tenant_key):
    deployment = Herald(tmp_path, smtp={"port": 1})
    deployment.start_api()
    deployment.start_worker()
    tenant, key, secret = new_tenant_key()
    try:
        with Client(deployment.url, key) as client:
            client.put("/v1/users/a", json={"id": "a", "roles": ["admin"]})
            # the admin has the inbox open, so the worker publishes the item live
            token = mint_user_token(secret, tenant, "a", timedelta(hours=1))
            ws_url = deployment.url.replace("http", "ws") + f"/v1/me/stream?token={token}"
            with connect(ws_url) as ws:
                assert json.loads(ws.recv(timeout=10))["type"] == "hello"
                client.post("/v1/events", json={"id": "m1", "type": "code.paired", "subject": {
                    "kind": "code", "id": "Q", "number": "Q"}})
                assert json.loads(ws.recv(timeout=20))["type"] == "item"
            client.wait_terminal("m1")
            # the actor's time is observed once it returns, which may be after its deliveries
            # are terminal (a busy machine): wait for it rather than read once
            done = re.compile(r'herald_actor_seconds_bucket\{actor="route_events",'
                              r'le="[0-9.+Inf]+",outcome="done"\} [1-9]')
            wait_until(lambda: done.search(client.get("/metrics").text), 15,
                       what="the route actor's time in /metrics")
            text = client.get("/metrics").text
        # (the schema is shared by the session's tests, so the sweeper may find others' work)
        routed = re.search(r'herald_events_routed_total\{status="routed"\} ([0-9.]+)', text)
        sent = re.search(r'herald_deliveries_total\{channel="browser",status="sent"\} ([0-9.]+)',
                         text)
        assert routed and float(routed.group(1)) >= 1 and sent and float(sent.group(1)) >= 1
        assert re.search(r'herald_actor_seconds_bucket\{actor="route_events",le="[0-9.+Inf]+",'
                         r'outcome="done"\} [1-9]', text), "the route actor's time, by middleware"
        assert "herald_queue_lag_seconds" in text

        def logged() -> list[dict[str, Any]]:
            return [json.loads(line) for line in deployment.log("worker").splitlines()
                    if line.startswith("{")]
        lines = logged()
        routed = next(r for r in lines if r.get("message") == "route.batch")
        assert routed["actor"] == "route_events" and routed["queue"] == "herald.route"
        assert len(routed["message_id"]) == 36  # every line an actor logs says which message

        def browser_batch() -> dict[str, Any] | None:  # logged just after the item went out
            return next((r for r in logged() if r.get("message") == "deliver.live"
                         and r["channel"] == "browser"), None)
        batch = wait_until(browser_batch, 10, 0.1, what="the deliver.live log line")
        assert batch["delivery_ids"] and batch["sent"] == batch["deliveries"]
        assert batch["publish_s"] >= 0
        routed_log = next(r for r in lines if r.get("message") == "route.batch")
        assert routed_log["event_pks"] and routed_log["tenants"]
    finally:
        deployment.stop()


def test_a_worker_with_a_channel_configured_wrongly_stops_at_start_naming_the_key(tmp_path):
    """A wrong key would fail every push for hours; an unconfigured channel is just off."""
    (tmp_path / "broken").mkdir(), (tmp_path / "off").mkdir()
    broken = Herald(tmp_path / "broken", push={"vapid_private_key": "not-a-key",
                                               "vapid_public_key": "BNotAKeyEither"})
    proc = broken._spawn("worker", "worker", "--threads", "1")
    try:
        assert proc.wait(timeout=60) == 2
    finally:
        broken.stop()
    log = broken.log("worker")
    assert "push.vapid_private_key is not a VAPID private key" in log
    assert "herald vapid generate" in log

    off = Herald(tmp_path / "off", smtp={"host": ""},
                 push={"vapid_private_key": "", "vapid_public_key": ""})
    try:
        off.start_worker(threads=1)
        lines = [json.loads(line) for line in off.log("worker").splitlines()
                 if line.startswith("{")]
        said = {line.get("channel"): line.get("problem", "") for line in lines
                if line.get("message") == "channel.off"}
        assert "HERALD_SMTP__HOST" in said["email"]
        assert "herald vapid generate" in said["push"]
    finally:
        off.stop()
