"""W2 fan-out: one `code.deactivated` in a tenant with 50,000 admins/moderators.

Set-up: 50,000 employees, half `admin`, half `moderator` (bulk insert), without
email address or push registration, so each gets the browser channel only (a feed
item + a live message); an API process and one worker process (all queues); 500
websocket clients (smoke: 20) connected as admins spread over the directory.

Measured from just before the POST: when 50,000 feed items exist (polled), and
when every connected client has received its item frame.

Peer, in the same run: django-notifications-hq's `notify.send` to 50,000 users in
its own schema of the same PostgreSQL (bench/peers/django_notify.py, a subprocess).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
import psycopg
from sqlalchemy import insert
from websockets.asyncio.client import connect

from bench.common import (
    Deployment,
    Row,
    Sizes,
    busy_share,
    cpu_delta,
    machine_cpu,
    pg_backend_cpu,
    pg_schema,
    profiled,
    progress,
    quantile,
    tmpdir,
    verdict,
)
from bench.peers import django_notify
from router.core.security import mint_user_token
from router.directory import tenants
from router.store import models as m

TARGET_S = 4.0
PEER_FACTOR = 10.0


def load_admins(db: Any, tenant: str, n: int) -> None:
    with db.session() as s:
        for first in range(0, n, 10_000):
            ids = range(first, min(n, first + 10_000))
            s.execute(insert(m.User), [
                {"tenant_id": tenant, "id": f"a{i}", "kind": "employee", "name": f"Admin {i}",
                 "email": None, "roles": ["admin" if i % 2 else "moderator"], "active": True,
                 "avatar_url": ""} for i in ids])
            s.execute(insert(m.UserRole), [
                {"tenant_id": tenant, "user_id": f"a{i}",
                 "role": "admin" if i % 2 else "moderator"} for i in ids])


def event(n: int) -> dict[str, Any]:
    return {"id": f"fanout-{n}", "type": "code.deactivated",
            "actor": {"id": "ops-system", "name": "Ops"},
            "subject": {"kind": "code", "id": f"C-{n}", "number": f"#C{n}"},
            "data": {"title": "Code deactivated"}}


def warm_event() -> dict[str, Any]:
    return {"id": "warm-1", "type": "ticket.created", "actor": {"id": "ops-system"},
            "subject": {"kind": "ticket", "id": "T-warm", "number": "#1", "creator_id": "a1"},
            "data": {"title": "warm-up"}}


class FeedPoller(threading.Thread):
    """Polls the feed row count of one event type until it reaches `want`."""

    def __init__(self, url: str, event_type: str, want: int, timeout: float) -> None:
        super().__init__(daemon=True)
        self.url, self.event_type, self.want, self.timeout = url, event_type, want, timeout
        self.reached: float | None = None
        self.count = 0

    def run(self) -> None:
        deadline = time.perf_counter() + self.timeout
        with psycopg.connect(self.url, autocommit=True) as conn:
            while time.perf_counter() < deadline:
                row = conn.execute("SELECT count(*) FROM feed_items WHERE event_type = %s",
                                   (self.event_type,)).fetchone()
                self.count = int(row[0]) if row else 0
                if self.count >= self.want:
                    self.reached = time.perf_counter()
                    return
                time.sleep(0.02)


async def clients(url: str, tokens: list[str], arrivals: dict[int, float],
                  ready: asyncio.Event, go: asyncio.Event, timeout: float) -> None:
    """Open one websocket per token (25 handshakes at a time: each hello costs the API
    a query), set `ready` when all are open, then record when each gets its item."""
    base = url.replace("http://", "ws://")
    gate = asyncio.Semaphore(25)
    opened = 0

    async def one(i: int, token: str) -> None:
        nonlocal opened
        async with gate:
            ws = await connect(f"{base}/v1/me/stream?token={token}", open_timeout=60,
                               max_queue=None)
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello", hello
        opened += 1
        if opened == len(tokens):
            ready.set()
        try:
            await go.wait()
            async with asyncio.timeout(timeout):
                async for raw in ws:
                    message = json.loads(raw)
                    if (message.get("type") == "item"
                            and message["item"]["event_type"] == "code.deactivated"):
                        arrivals[i] = time.perf_counter()
                        return
        except TimeoutError:
            return
        finally:
            await ws.close()

    await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))


def measure(dep: Deployment, schema: Any, key: str, secret: str, tenant: str, admins: int,
            n_clients: int, timeout: float, profile_dir: str | None) -> dict[str, Any]:
    step = max(1, admins // n_clients)
    users = [f"a{i}" for i in range(0, admins, step)][:n_clients]
    tokens = [mint_user_token(secret, tenant, u, timedelta(hours=2)) for u in users]
    http = httpx.Client(base_url=dep.url, timeout=60, headers={"Authorization": f"Bearer {key}"})
    arrivals: dict[int, float] = {}
    result: dict[str, Any] = {}

    async def main() -> None:
        ready, go = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(clients(dep.url, tokens, arrivals, ready, go, timeout))
        await asyncio.wait([asyncio.create_task(ready.wait()), task], timeout=300,
                           return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            raise RuntimeError("websocket clients ended before the event")
        progress(f"W2: {len(tokens)} websocket clients connected; publishing one "
                 f"code.deactivated to {admins:,} admins/moderators")
        poller = FeedPoller(schema.url, "code.deactivated", admins, timeout)
        before = (dep.cpu_seconds(), pg_backend_cpu(schema.name), machine_cpu())
        go.set()
        with profiled(profile_dir, "w2-worker", dep.pid("worker")):
            started = time.perf_counter()
            poller.start()
            response = await asyncio.to_thread(http.post, "/v1/events", json=event(1))
            if response.status_code != 202:
                raise RuntimeError(f"publish answered {response.status_code}: {response.text}")
            await task
            await asyncio.to_thread(poller.join, timeout)
        after = (dep.cpu_seconds(), pg_backend_cpu(schema.name), machine_cpu())
        result.update(started=started, feed_at=poller.reached, feed_count=poller.count,
                      cpu=cpu_delta(before[0], after[0], 1),
                      pg_cpu_s=round(after[1] - before[1], 2),
                      busy=round(busy_share(before[2], after[2]), 3))

    try:
        response = http.post("/v1/events", json=warm_event())
        response.raise_for_status()
        asyncio.run(main())
    finally:
        http.close()
    started = result["started"]
    waits = sorted(t - started for t in arrivals.values())
    result.update(notified=len(arrivals), clients=len(tokens),
                  ws_all_s=(max(waits) if len(waits) == len(tokens) else None),
                  ws_p50_s=quantile(waits, 0.5) if waits else None,
                  feed_s=(result["feed_at"] - started) if result["feed_at"] else None)
    return result


def run(sizes: Sizes, raw: dict[str, Any], profile_dir: str | None = None,
        peers: bool = True) -> list[Row]:
    admins, n_clients = sizes.w2_admins, sizes.w2_clients
    timeout = 60.0 if sizes.smoke else 300.0
    with pg_schema("bench_w2") as schema, tmpdir("w2") as tmp:
        with schema.db.session() as s:
            created = tenants.create(s, "Bench W2", tenant_id="bench")
        progress(f"W2: loading {admins:,} admins/moderators ...")
        load_admins(schema.db, "bench", admins)
        dep = Deployment(tmp, schema.url)
        try:
            dep.start_api()
            dep.start_worker(threads=8)
            got = measure(dep, schema, created.api_key, created.signing_secret, "bench",
                          admins, n_clients, timeout, profile_dir)
        finally:
            dep.stop()
    feed_s, ws_s = got["feed_s"], got["ws_all_s"]
    progress(f"W2: {got['feed_count']:,} feed items in "
             f"{feed_s if feed_s is None else round(feed_s, 2)} s; "
             f"{got['notified']}/{got['clients']} clients notified, last at "
             f"{ws_s if ws_s is None else round(ws_s, 2)} s; worker CPU "
             f"{got['cpu'].get('worker', 0) / 1000:.1f} s, PostgreSQL {got['pg_cpu_s']} s")
    floor = admins / raw["pg_rows_per_s"]
    raw_text = f"{admins:,} rows at raw COPY rate: {floor:.2f} s"
    details = {k: v for k, v in got.items() if k not in ("started", "feed_at")}
    rows = [
        Row("W2", f"fan-out: {admins:,} feed items in "
                  + (f"{feed_s:.2f} s" if feed_s else f"> {timeout:.0f} s "
                     f"({got['feed_count']:,} written)"),
            f"≤ {TARGET_S:g} s", raw_text, verdict(bool(feed_s) and feed_s <= TARGET_S),
            feed_s, "s", details),
        Row("W2", f"fan-out: {got['notified']}/{got['clients']} websocket clients notified "
                  + (f"in {ws_s:.2f} s" if ws_s else f"(timeout {timeout:.0f} s)"),
            f"all within {TARGET_S:g} s", "-", verdict(bool(ws_s) and ws_s <= TARGET_S),
            ws_s, "s", {}),
    ]
    if not (peers and sizes.w2_peer):
        return rows
    progress(f"W2 peer: django-notifications-hq notify.send to {admins:,} users ...")
    peer = django_notify.run(admins)
    if peer.get("skipped"):
        rows.append(Row("W2", f"peer django-notifications-hq: skipped ({peer['skipped']})",
                        f"Herald ≥ {PEER_FACTOR:g}× faster", "-", "skipped"))
        return rows
    factor = peer["seconds"] / feed_s if feed_s else 0.0
    progress(f"W2 peer: {peer['seconds']:.1f} s for {peer['notifications']:,} notifications "
             f"({peer['per_s']:,.0f}/s); Herald {factor:.1f}× faster")
    rows.append(Row("W2", f"peer django-notifications-hq: {peer['seconds']:.1f} s "
                          f"(Herald {factor:.1f}× faster)",
                    f"Herald ≥ {PEER_FACTOR:g}× faster", "same PostgreSQL, own schema",
                    verdict(factor >= PEER_FACTOR), factor, "×", peer))
    return rows
