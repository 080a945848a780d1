"""`herald rules check | test | explain`, run as an admin runs them: the console script
and `python -m router.cli`, on the shipped rules and on broken copies."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from router.cli.explain import explain_in, render_plan, sandbox
from router.core.errors import ValidationFailed
from tests import factories as f
from tests.conftest import ROOT, RULES

HERALD = [sys.executable, "-m", "router.cli"]


def herald(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HERALD, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_the_herald_console_script_checks_the_shipped_rules():
    script = Path(sys.executable).with_name("herald")
    result = subprocess.run([str(script), "rules", "check", "rules"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("✓ rules") and "OK" in result.stdout


def test_rules_check_passes_on_the_shipped_rules_and_fails_with_file_line(tmp_path):
    ok = herald("rules", "check", "rules")
    assert ok.returncode == 0 and "OK" in ok.stdout
    broken = tmp_path / "rules"
    shutil.copytree(RULES, broken)
    text = (broken / "platform.yaml").read_text().replace("receivers:\n      - creator",
                                                          "receivers:\n      - creater", 1)
    (broken / "platform.yaml").write_text(text)
    bad = herald("rules", "check", str(broken))
    assert bad.returncode == 1
    assert f"{broken}/platform.yaml:" in bad.stderr and "unknown selector 'creater'" in bad.stderr


def test_rules_test_passes_with_a_case_for_every_shipped_rule():
    result = herald("rules", "test")
    assert result.returncode == 0, result.stdout
    assert "0 failed" in result.stdout and "not covered" not in result.stdout


def test_rules_test_shows_a_diff_when_a_case_fails(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    cases = (rules / "platform.test.yaml").read_text().replace(
        "sup2: {channels: [browser, email]}", "sup2: {channels: [email]}")
    (rules / "platform.test.yaml").write_text(cases)
    result = herald("rules", "test", str(rules))
    assert result.returncode == 1
    assert "FAIL  platform.test.yaml: the creation flow's group" in result.stdout
    assert "+    - browser" in result.stdout and "8 passed, 1 failed" in result.stdout


def test_rules_test_compares_the_timing_a_case_expects(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    cases = (rules / "platform.test.yaml").read_text().replace(
        "timing: [email escalated after 10m unless read]",
        "timing: [email escalated after 5m unless read]")
    (rules / "platform.test.yaml").write_text(cases)
    result = herald("rules", "test", str(rules))
    assert result.returncode == 1
    assert "FAIL  platform.test.yaml: a video session request rings now" in result.stdout
    assert "+- email escalated after 10m unless read" in result.stdout


def test_rules_explain_shows_an_escalation(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({
        "id": "x2", "type": "video_session.requested",
        "subject": {"kind": "video_session", "id": "V-1", "number": "V-1", "template_id": "tpl"}}))
    fixture = tmp_path / "directory.yaml"
    fixture.write_text(yaml.safe_dump(yaml.safe_load(
        (Path(RULES) / "platform.test.yaml").read_text())["directory"]))
    result = herald("rules", "explain", str(event), "--directory", str(fixture))
    assert result.returncode == 0, result.stderr
    assert "Timing:\n  ⏱ email escalated after 10m unless read" in result.stdout


def test_rules_explain_shows_matched_rules_receivers_and_reasons(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({
        "id": "x1", "type": "ticket.created", "actor": {"id": "cust1"},
        "subject": {"kind": "ticket", "id": "T-1", "number": "#1", "template_id": "tpl",
                    "creator_id": "creator", "customer_org_id": "org1"}}))
    cases = Path(RULES) / "platform.test.yaml"
    fixture = tmp_path / "directory.yaml"
    fixture.write_text(yaml.safe_dump(yaml.safe_load(cases.read_text())["directory"]))
    result = herald("rules", "explain", str(event), "--directory", str(fixture))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Matched rules (5)" in out and "✓ ticket-notification-receivers" in out
    assert "because: subject-creator (creator)" in out
    assert "✗ customer cust2: customer notifications are off" in out
    as_json = json.loads(herald("rules", "explain", str(event), "--directory", str(fixture),
                                "--json").stdout)
    assert {r["id"] for r in as_json["receivers"]} == {"sup1", "dep1", "creator", "cu1"}


def test_explain_in_a_sandbox_shows_quiet_hours_and_refuses_overlapping_windows(engine):
    window = f.quiet_window_around(datetime.now(UTC), "Asia/Tokyo", 600, 3600)
    fixture = {"users": [{"id": "ann", "email": "ann@x.example", "time_zone": "Asia/Tokyo"}],
               "settings": {"ann": {"quiet_hours": [window]}}}
    event = {"id": "q1", "type": "ticket.created", "actor": {"id": "someone"},
             "subject": {"kind": "ticket", "id": "T-1", "number": "#1", "creator_id": "ann"}}
    with sandbox(fixture) as (db, tenant):
        out = render_plan(explain_in(db, tenant, engine, event))
    assert f"email deferred by quiet hours until {window['to']} Asia/Tokyo" in out
    fixture["settings"]["ann"]["quiet_hours"].append(window)
    with pytest.raises(ValidationFailed, match="settings.ann: quiet_hours.1.from: overlaps"), \
            sandbox(fixture):
        pass
