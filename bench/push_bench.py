"""Web push throughput of the push adapter, next to raw ``http_ece.encrypt``.

    .venv/bin/python -m bench.push_bench [--n 500] [--batch 100] [--subscriptions 50]
                                         [--server-process]

One process: the local push service (``tests/servers/webpush.py``: VAPID check and
RFC 8291 decryption of every push) runs in threads of this process, and
``PushAdapter.send`` pushes N notifications to it in batches, as a worker does
after ``prepare`` (no database: the jobs are built in memory). The service's own
work shares the GIL, so the adapter figure is a lower bound; ``--server-process``
runs the service in a child process instead, to see the sender's share alone.
Then the same payload is encrypted N times with ``http_ece.encrypt`` (aes128gcm,
a fresh ephemeral key each time, as pywebpush does), and the ratio says how many
raw encryptions one full push costs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec

from channels import push_payload as pp
from channels.push import WEBPUSH, PushAdapter, Target
from router.core.config import load_config
from router.core.enums import Channel, OutcomeStatus
from router.delivery.contracts import ChannelContext, Job
from router.delivery.live import Live
from router.ruleset.rulefile import load_ruleset
from tests.servers.webpush import PushService, vapid_keypair

WARM_UP = 20


def _adapter(private: str, public: str) -> PushAdapter:
    config = load_config(push={"vapid_private_key": private, "vapid_public_key": public},
                         fcm={"service_account_file": "", "service_account_json": ""},
                         outbound={"allow": ["127.0.0.1"]})
    return PushAdapter(ChannelContext(config, Live(""),
                                      event_options=load_ruleset(config.rules_path).events.get))


def _job(n: int, sub: dict[str, Any]) -> Job:
    content = {"title": f"New ticket #{n}", "message": "Cust One opened ticket #1 “Broken "
               "elevator” for asset “Lift 3, building B”.", "language": "en",
               "link": f"https://app.example.com/tickets/T-{n}",
               "created_at": datetime.now(UTC).isoformat()}
    event = {"type": "ticket.created", "subject": {"kind": "ticket", "id": f"T-{n}"}}
    job = Job(id=n, tenant="bench", channel=Channel.PUSH, receiver_kind="employee",
              receiver_id="u1", strategy="all", attempts=1, content=content, event=event)
    job.extra["targets"] = [Target(WEBPUSH, sub["endpoint"], sub["keys"]["p256dh"],
                                   sub["keys"]["auth"])]
    job.extra["notice"] = pp.fit(pp.notice(content, event, content["link"], n))
    return job


def bench_adapter(n: int, batch: int, subscriptions: int,
                  server_process: bool) -> tuple[float, bytes]:
    private, public = vapid_keypair()
    serve = _child_service if server_process else _local_service
    with serve(public, subscriptions, WARM_UP + n) as subs:
        adapter = _adapter(private, public)
        _check(adapter.send([_job(i, subs[i % len(subs)]) for i in range(WARM_UP)]))
        jobs = [_job(WARM_UP + i, subs[i % len(subs)]) for i in range(n)]
        start, cpu = time.perf_counter(), time.process_time()
        for first in range(0, n, batch):
            _check(adapter.send(jobs[first:first + batch]))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if server_process:  # this process only sends: its CPU is the adapter's cost
        print(f"sender CPU: {cpu * 1000 / n:.2f} ms per push "
              f"(one core: {n / cpu if cpu else 0:,.0f} pushes/s)")
    return n / elapsed, pp.web_payload(jobs[0].extra["notice"])


@contextmanager
def _local_service(public: str, subscriptions: int, expected: int
                   ) -> Iterator[list[dict[str, Any]]]:
    with PushService(expected_vapid_public_key=public) as service:
        yield [service.new_subscription() for _ in range(subscriptions)]
        service.wait_for(expected, timeout=60)


@contextmanager
def _child_service(public: str, subscriptions: int, expected: int
                   ) -> Iterator[list[dict[str, Any]]]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(public, subscriptions, expected, child))
    proc.start()
    try:
        yield parent.recv()
        delivered = parent.recv()
        if delivered < expected:
            raise SystemExit(f"the push service got {delivered} of {expected} pushes")
    finally:
        proc.join(timeout=60)


def _serve(public: str, subscriptions: int, expected: int, conn: Any) -> None:
    with _local_service(public, subscriptions, expected) as subs:
        conn.send(subs)
    conn.send(expected)


def _check(outcomes: dict[int, Any]) -> None:
    bad = [o for o in outcomes.values() if o.status != OutcomeStatus.SENT]
    if bad:
        raise SystemExit(f"{len(bad)} push(es) not sent, e.g. {bad[0].detail}")


def bench_encrypt(n: int, payload: bytes) -> float:
    receiver = ec.generate_private_key(ec.SECP256R1()).public_key()
    auth = b"0123456789abcdef"
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            http_ece.encrypt(payload, private_key=ec.generate_private_key(ec.SECP256R1()),
                             dh=receiver, auth_secret=auth, version="aes128gcm")
        runs.append(n / (time.perf_counter() - start))
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.push_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500, help="pushes to send (default 500)")
    parser.add_argument("--batch", type=int, default=PushAdapter.batch_size)
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--server-process", action="store_true",
                        help="run the push service in a child process (default: threads here)")
    args = parser.parse_args(argv)
    pushes, payload = bench_adapter(args.n, args.batch, args.subscriptions, args.server_process)
    encrypts = bench_encrypt(args.n, payload)
    print(f"payload: {len(payload)} bytes JSON, {len(payload) + pp.AES128GCM_OVERHEAD} encrypted")
    where = "a child process" if args.server_process else "this process"
    print(f"PushAdapter.send -> local push service: {pushes:8.0f} pushes/s "
          f"({args.n} pushes, batches of {args.batch}, {args.subscriptions} subscriptions, "
          f"service in {where})")
    print(f"http_ece.encrypt (aes128gcm, fresh key):  {encrypts:8.0f} encryptions/s")
    print(f"ratio: one push costs {encrypts / pushes:.1f} raw encryptions "
          f"(adapter at {100 * pushes / encrypts:.0f}% of raw encryption speed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
