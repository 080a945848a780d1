"""W5 channels: email and web push, one worker each.

Email. A counting SMTP sink (aiosmtpd) runs in a child process, so no sender shares
its GIL. The same rendered Herald message (multipart text + HTML, ~3 KB) is sent
- raw: smtplib on one reused connection, N mails (the raw limit);
- Herald: the *deliver actor path* in one `herald worker` process consuming only
  `herald.email` (8 threads): N pending email deliveries are inserted, their ids
  enqueued in batches as the router does, and the clock stops when all are `sent`
  (claim, prepare = render + unsubscribe token, SMTP send on one connection per
  batch of 100, outcome recorded). EmailAdapter.send alone with prepared jobs (in
  this process) is reported in the details, to split send from the rest;
- peer apprise: a fresh Apprise object per mail, same sink (bench/peers/apprise_email.py).

Web push. bench/push_bench.py: PushAdapter.send with prepared jobs (VAPID signing,
RFC 8291 encryption, HTTP POST) to the local push service running in a child
process (it verifies the JWT and decrypts every push), next to the raw
http_ece.encrypt rate measured in this run.
"""

from __future__ import annotations

import email
import email.policy
import smtplib
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import insert

from bench import push_bench
from bench.common import (
    REDIS_URL,
    Deployment,
    Row,
    Sizes,
    cpu_delta,
    pg_schema,
    profiled,
    progress,
    tmpdir,
    verdict,
)
from bench.peers import apprise_email
from bench.sinks import smtp_sink
from channels.email import EmailAdapter
from channels.mail_content import MailRenderer, MailSettings
from router.core.config import load_config
from router.core.enums import Channel, DeliveryStatus
from router.delivery.contracts import ChannelContext, Job
from router.delivery.live import Live
from router.directory import tenants
from router.routing.events import Event
from router.routing.pipeline import publish
from router.store import models as m

FROM = "Herald <herald@bench.localhost>"
EMAIL_SHARE = 0.8
PEER_FACTOR = 10.0
PUSH_MIN = 300.0
PUSH_SHARE = 0.5


def _event(tenant: str) -> dict[str, Any]:
    return {"id": "mail-1", "type": "ticket.created", "tenant": tenant,
            "actor": {"id": "c1", "name": "Carla Customer"},
            "subject": {"kind": "ticket", "id": "T-1042", "number": "#1042"},
            "data": {"title": "Elevator 3 stuck between floors"}}


def _content(i: int) -> dict[str, Any]:
    return {"language": "en", "title": "New ticket #1042",
            "message": "Carla Customer opened ticket #1042 “Elevator 3 stuck between floors”.",
            "link": "https://app.example.com/tickets/T-1042", "email": f"u{i}@bench.example",
            "name": f"User {i}", "created_at": datetime.now(UTC).isoformat()}


def sample_job(tenant: str, i: int = 0) -> Job:
    return Job(id=i + 1, tenant=tenant, channel=Channel.EMAIL, receiver_kind="employee",
               receiver_id=f"u{i}", strategy="all", attempts=1, content=_content(i),
               event=_event(tenant))


def render(job: Job) -> Any:
    renderer = MailRenderer()
    ctx = renderer.context(job, job.content["link"], None,
                           "http://127.0.0.1:8000/v1/unsubscribe/hu_x", "Bench")
    return renderer.build(job, ctx, MailSettings(FROM, "", "bench.localhost"))


def raw_smtplib(host: str, port: int, n: int, message: bytes) -> float:
    conn = smtplib.SMTP(host, port, local_hostname="localhost")
    try:
        started = time.perf_counter()
        for i in range(n):
            conn.sendmail("herald@bench.localhost", [f"u{i}@bench.example"], message)
        return n / (time.perf_counter() - started)
    finally:
        conn.quit()


def adapter_send(host: str, port: int, n: int, tenant: str) -> float:
    config = load_config(smtp={"host": host, "port": port, "from_addr": FROM})
    adapter = EmailAdapter(ChannelContext(config, Live("")))
    jobs = [sample_job(tenant, i) for i in range(n)]
    for job in jobs:
        job.extra["message"] = render(job)
    started = time.perf_counter()
    for first in range(0, n, EmailAdapter.batch_size):
        outcomes = adapter.send(jobs[first:first + EmailAdapter.batch_size])
        bad = [o for o in outcomes.values() if o.status != "sent"]
        if bad:
            raise RuntimeError(f"{len(bad)} mails not sent, e.g. {bad[0].detail}")
    return n / (time.perf_counter() - started)


def email_deliveries(db: Any, tenant: str, first: int, n: int) -> list[int]:
    """N pending email deliveries of one stored event, to employees u<first>..."""
    now = datetime.now(UTC)
    with db.session() as s:
        s.execute(insert(m.User), [
            {"tenant_id": tenant, "id": f"u{i}", "kind": "employee", "name": f"User {i}",
             "email": f"u{i}@bench.example", "roles": [], "active": True, "avatar_url": ""}
            for i in range(first, first + n)])
        doc = {**_event(tenant), "id": f"mail-{first}"}
        [stored] = publish(s, tenant, [Event.model_validate(doc)])
        ids = list(s.scalars(insert(m.Delivery).returning(
            m.Delivery.id, sort_by_parameter_order=True), [
            {"tenant_id": tenant, "event_pk": stored.pk, "receiver_kind": "employee",
             "receiver_id": f"u{i}", "channel": "email", "status": DeliveryStatus.PENDING,
             "strategy": "all", "step": 0, "chain": [], "feed_item_id": None,
             "content": _content(i), "attempts": 0, "created_at": now, "updated_at": now}
            for i in range(first, first + n)]))
    return ids


def wait_sent(url: str, ids: list[int], timeout: float, resend: Any = None) -> float:
    """Poll until every delivery is sent. If nothing moves for 60 s while some are still
    pending, their ids are enqueued again (`resend`): on this shared machine queued
    messages were seen vanishing from Redis; claims are guarded, so nothing is sent twice."""
    deadline = time.perf_counter() + timeout
    last, moved = -1, time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FILTER (WHERE status = 'sent'), "
                               "count(*) FILTER (WHERE status = 'failed') FROM deliveries "
                               "WHERE id BETWEEN %s AND %s", (min(ids), max(ids))).fetchone()
            assert row is not None
            if row[0] + row[1] >= len(ids):
                if row[1]:
                    raise RuntimeError(f"{row[1]} email deliveries failed")
                return time.perf_counter()
            now = time.perf_counter()
            if row[0] != last:
                last, moved = row[0], now
            elif resend is not None and now - moved > 60:
                pending = [r[0] for r in conn.execute(
                    "SELECT id FROM deliveries WHERE id BETWEEN %s AND %s AND status = "
                    "'pending' AND attempts = 0", (min(ids), max(ids)))]
                if pending:
                    progress(f"W5:   no progress for 60 s; {len(pending)} deliveries never "
                             "claimed: enqueueing them again (lost queue messages?)")
                    resend(pending)
                moved = now
            if now > deadline:
                raise RuntimeError(f"{row[0]} of {len(ids)} mails sent after {timeout:.0f}s")
            time.sleep(0.02)


def herald_worker(sizes: Sizes, host: str, port: int, profile_dir: str | None
                  ) -> dict[str, Any]:
    from router.runtime import Runtime

    n = sizes.w5_mails
    with pg_schema("bench_w5") as schema, tmpdir("w5") as tmp:
        with schema.db.session() as s:
            tenants.create(s, "Bench W5", tenant_id="bench")
        dep = Deployment(tmp, schema.url, smtp={"host": host, "port": port, "from_addr": FROM})
        runtime = Runtime(load_config(database_url=schema.url, broker_url=REDIS_URL,
                                      smtp={"host": host, "port": port}))
        try:
            dep.start_worker(threads=8, queues=["herald.email"])
            warm = email_deliveries(schema.db, "bench", 0, 100)
            runtime.workers.enqueue_deliveries({Channel.EMAIL: warm})
            wait_sent(schema.url, warm, 120)
            ids = email_deliveries(schema.db, "bench", 100, n)
            progress(f"W5: Herald worker (deliver actor path): {n:,} mails ...")
            before = dep.cpu_seconds()
            with profiled(profile_dir, "w5-email-worker", dep.pid("worker")):
                started = time.perf_counter()
                runtime.workers.enqueue_deliveries({Channel.EMAIL: ids})
                done = wait_sent(schema.url, ids, 1200, lambda again: runtime.workers
                                 .enqueue_deliveries({Channel.EMAIL: again}))
            after = dep.cpu_seconds()
        finally:
            runtime.close()
            dep.stop()
    return {"per_s": n / (done - started), "seconds": round(done - started, 2),
            "cpu_ms_per_mail": cpu_delta(before, after, n)}


def run(sizes: Sizes, raw: dict[str, Any], profile_dir: str | None = None,
        peers: bool = True) -> list[Row]:
    rows: list[Row] = []
    data = render(sample_job("bench")).data  # the bytes Herald sends
    message = email.message_from_bytes(data, policy=email.policy.default)
    with smtp_sink() as sink:
        progress(f"W5: raw smtplib, one connection: {sizes.w5_mails:,} mails of "
                 f"{len(data):,} bytes ...")
        raw_rate = raw_smtplib(sink.host, sink.port, sizes.w5_mails, data)
        progress(f"W5:   {raw_rate:,.0f} mails/s")
        adapter_rate = adapter_send(sink.host, sink.port, sizes.w5_mails, "bench")
        progress(f"W5: EmailAdapter.send alone (prepared jobs, this process): "
                 f"{adapter_rate:,.0f} mails/s")
        herald = herald_worker(sizes, sink.host, sink.port, profile_dir)
        rate = herald["per_s"]
        progress(f"W5:   Herald worker {rate:,.0f} mails/s ({rate / raw_rate:.0%} of raw); "
                 f"CPU ms/mail {herald['cpu_ms_per_mail']}")
        share = rate / raw_rate
        rows.append(Row("W5", f"email: {rate:,.0f} mails/s = {share:.0%} of raw",
                        f"≥ {EMAIL_SHARE:.0%} of raw smtplib",
                        f"raw smtplib 1 connection: {raw_rate:,.0f}/s",
                        verdict(share >= EMAIL_SHARE), rate, "mails/s",
                        {**herald, "raw_smtplib_per_s": round(raw_rate, 1),
                         "adapter_send_only_per_s": round(adapter_rate, 1),
                         "message_bytes": len(data), "mails": sizes.w5_mails,
                         "path": "deliver actor in one `herald worker --queues herald.email`"}))
        if peers:
            missing = apprise_email.available()
            if missing:
                rows.append(Row("W5", f"peer apprise: skipped ({missing})",
                                f"Herald ≥ {PEER_FACTOR:g}× faster", "-", "skipped"))
            else:
                n = sizes.w5_apprise_mails
                progress(f"W5 peer: apprise, fresh object per mail: {n:,} mails ...")
                html = message.get_body(("html",)).get_content()
                peer = apprise_email.send(sink.host, sink.port, n, str(message["Subject"]),
                                          html)
                factor = rate / peer
                progress(f"W5 peer:   {peer:,.1f} mails/s; Herald {factor:.0f}× faster")
                rows.append(Row("W5", f"peer apprise: {peer:,.1f} mails/s "
                                      f"(Herald {factor:.0f}× faster)",
                                f"Herald ≥ {PEER_FACTOR:g}× faster", "same SMTP sink",
                                verdict(factor >= PEER_FACTOR), factor, "×",
                                {"apprise_per_s": round(peer, 2), "mails": n}))
    n = sizes.w5_pushes
    progress(f"W5: web push: PushAdapter.send, {n:,} pushes to the local push service "
             f"(child process) ...")
    pushes, _payload = push_bench.bench_adapter(n, 100, 50, server_process=True)
    share = pushes / raw["http_ece_per_s"]
    progress(f"W5:   {pushes:,.0f} pushes/s = {share:.0%} of raw http_ece")
    raw_text = f"http_ece.encrypt: {raw['http_ece_per_s']:,.0f}/s"
    rows.append(Row("W5", f"web push: {pushes:,.0f} pushes/s", f"≥ {PUSH_MIN:g}/s", raw_text,
                    verdict(pushes >= PUSH_MIN), pushes, "pushes/s",
                    {"pushes": n, "path": "PushAdapter.send, prepared jobs, batches of 100, "
                     "push service in a child process"}))
    rows.append(Row("W5", f"web push: {share:.0%} of raw encryptions/s",
                    f"≥ {PUSH_SHARE:.0%} of raw http_ece", raw_text,
                    verdict(share >= PUSH_SHARE), share, "ratio", {}))
    return rows
