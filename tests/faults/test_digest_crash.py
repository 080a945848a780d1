"""`kill -9` of a worker while it sends digests: each event is in exactly one digest.

Twenty receivers each get five events on their own ticket inside a 2 s digest window;
the SMTP server answers slowly, so when the window closes the two workers spend seconds
sending. One is killed mid-send; its claims are released (heartbeat) and sent by the
other. A digest whose mail went out before the kill but was not recorded is sent again
as the same mail (same Message-ID, same events): what a mail reader counts is distinct
Message-IDs, and every event is in exactly one of them."""

from __future__ import annotations

import collections
import re
import time
import uuid

import pytest

from tests.faults.conftest import record
from tests.harness import Client, Herald, wait_until
from tests.ruleset.test_timing import rules_with

pytestmark = pytest.mark.slow
RECEIVERS, EVENTS_EACH = 20, 5
DIGESTED = """events:
  ticket.note:
    {subject: ticket, title: Note, digest: {window: 6s, key: subject, channels: [email]}}
"""
TITLE = re.compile(r"\bev-\d+-\d+\b")


@pytest.fixture
def deployment(tmp_path, pg, smtp_sink):
    (tmp_path / "rules").mkdir()
    (tmp_path / "run").mkdir()
    rules = rules_with(tmp_path / "rules", DIGESTED)
    herald = Herald(tmp_path / "run", smtp={"port": smtp_sink.port}, rules_path=str(rules))
    herald.start_api()
    herald.start_worker("w1", threads=2)
    herald.start_worker("w2", threads=2)
    yield herald
    herald.stop()


def test_a_worker_killed_while_sending_digests_leaves_each_event_in_exactly_one(
        deployment, new_tenant_key, smtp_sink):
    _tenant, key, _secret = new_tenant_key("Digest Crash Co")
    titles = [f"ev-{r}-{i}" for r in range(RECEIVERS) for i in range(EVENTS_EACH)]
    with Client(deployment.url, key) as client:
        for r in range(RECEIVERS):
            client.put(f"/v1/users/u{r}", json={"id": f"u{r}", "name": f"U{r}",
                                               "email": f"u{r}@crash.example"})
        smtp_sink.data_delay_s = 0.4  # a slow relay: 20 digests take seconds to send
        for i in range(EVENTS_EACH):
            batch = [{"id": uuid.uuid4().hex, "type": "ticket.note",
                      "data": {"title": f"ev-{r}-{i}", "message": "m"},
                      "subject": {"kind": "ticket", "id": f"T-{r}", "number": f"#{r}",
                                  "creator_id": f"u{r}"}} for r in range(RECEIVERS)]
            assert client.post("/v1/events:batch", json=batch).status_code == 202
        wait_until(lambda: len(smtp_sink.messages) >= 2, 30, what="digests going out")
        deployment.kill("w1")  # SIGKILL while both workers are sending
        killed_at = time.monotonic()
        deployment.start_worker("w3", threads=2)

        def every_event_mailed() -> bool:
            found = {t for msg in ours(smtp_sink) for t in TITLE.findall(body(msg))}
            return found >= set(titles)
        wait_until(every_event_mailed, 90, 0.5, what="every event in a received digest")
        time.sleep(2)  # a late duplicate would arrive now
    in_mails: dict[str, set[str]] = collections.defaultdict(set)
    lists: dict[str, set[frozenset[str]]] = collections.defaultdict(set)
    mails = ours(smtp_sink)
    for msg in mails:
        listed = frozenset(TITLE.findall(body(msg)))
        lists[msg["Message-ID"]].add(listed)
        for title in listed:
            in_mails[title].add(msg["Message-ID"])
    resent = len(mails) - len(lists)
    record("sigkill_during_digest_send", receivers=RECEIVERS, events=len(titles),
           digests=len(lists), mails_received=len(mails), resent_same_mail=resent,
           settle_s=round(time.monotonic() - killed_at, 1))
    assert sorted(in_mails) == sorted(titles), "an event is missing from every digest"
    assert all(len(ids) == 1 for ids in in_mails.values()), \
        {t: ids for t, ids in in_mails.items() if len(ids) > 1}
    assert all(len(versions) == 1 for versions in lists.values()), \
        "a re-sent digest listed other events than its first send"
    assert len(lists) == RECEIVERS  # one digest per receiver: the window gathered all five


def ours(sink) -> list:
    """This test's mails: the session's tests share a schema, so a sweeping worker may also
    send another test's leftover pending mail to this sink."""
    return [m for m in list(sink.messages) if str(m["To"]).endswith("@crash.example")]


def body(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()
