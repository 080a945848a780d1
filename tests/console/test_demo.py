"""`make run` (herald demo --serve) prints the console's URL and a console key beside
the inbox link, and that key opens the demo tenant's console."""

from __future__ import annotations

import re

import httpx

from tests.harness import Herald


def test_the_demo_prints_a_console_url_and_key_that_sign_in(tmp_path):
    herald = Herald(tmp_path, embedded=True)
    try:
        assert herald.cli("migrate").returncode == 0
        first = herald.cli("demo")
        done = herald.cli("demo")  # every run prints a fresh key; the older one is revoked
        assert done.returncode == 0, done.stderr
        found = re.search(r"Admin console:\s+(\S+)\s+\(console key: (hc_\S+)\)", done.stdout)
        assert found and found.group(1) == f"{herald.url}/console", done.stdout
        assert "Inbox, settings (Ana, admin)" in done.stdout
        old = re.search(r"console key: (hc_\S+)\)", first.stdout)
        assert old and old.group(1) != found.group(2)
        herald.start_api()
        login = httpx.post(f"{herald.url}/console/login", data={"key": found.group(2)})
        assert login.status_code == 303 and login.headers["location"] == "/console/rules"
        rules = httpx.get(f"{herald.url}/console/rules", cookies=login.cookies,
                          headers={"Accept": "text/html"})
        assert rules.status_code == 200 and "Acme Elevators (demo)" in rules.text
        stale = httpx.post(f"{herald.url}/console/login", data={"key": old.group(1)})
        assert stale.status_code == 401 and "revoked" in stale.text
    finally:
        herald.stop()
