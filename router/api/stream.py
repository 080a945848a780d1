"""``WS /v1/me/stream``: live feed items, unread counts, acks, replay on reconnect.

The frames are ``router.delivery.frames`` (hello, item, unread; ack from the client); the
protocol is served as an AsyncAPI 3.0 document at ``/asyncapi.json``.
Connect with ``?token=<user token>`` (browsers cannot set headers) and, after a
disconnect, ``&last_seq=<highest seq seen>`` to receive what was missed.
A refused connection is accepted, then closed with a code the client can act on:
1008 (reason: the error code, e.g. ``token.expired``; retrying does not help) or
1013 (too many connections for this user; retry later).
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from router.api.auth import Principal, principal
from router.core import metrics
from router.core.errors import AuthError
from router.delivery import deliveries, feed
from router.delivery.frames import POLICY_VIOLATION, TRY_AGAIN_LATER, Hello, Item, ServerFrame
from router.delivery.live import Session
from router.runtime import Runtime

log = logging.getLogger("herald.stream")
routes = APIRouter()


def _authenticate(runtime: Runtime, token: str) -> Principal:
    if not token:
        raise AuthError("connect with ?token=<user token>", code="auth.required")
    with runtime.db.session() as s:
        return principal(s, token, runtime.config.api.signing_grace_s)


def _hello(runtime: Runtime, who: Principal, last_seq: int | None) -> list[ServerFrame]:
    with runtime.db.session() as s:
        counts = feed.counts(s, who.reader)
        hello: Hello = {"type": "hello", "unread": counts.unread}
        if counts.unseen != counts.unread:
            hello["unseen"] = counts.unseen
        if last_seq is None:
            return [hello]
        replayed: list[ServerFrame] = []
        for row in feed.replay(s, who.reader, last_seq):
            item: Item = {"type": "item", "item": feed.item_json(row), "unread": counts.unread}
            if "unseen" in hello:
                item["unseen"] = counts.unseen
            replayed.append(item)
        return [hello, *replayed]


def _ack(runtime: Runtime, who: Principal, delivery_id: int) -> None:
    with runtime.db.session() as s:
        deliveries.acknowledge(s, who.tenant, delivery_id, (str(who.kind), who.id))


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Closing before the handshake would reach every client as a bare HTTP 403,
    hiding whether a retry can help; accept first so the close code arrives."""
    await websocket.accept()
    await websocket.close(code=code, reason=reason)


@routes.websocket("/v1/me/stream")
async def stream(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.app.state.runtime
    token = websocket.query_params.get("token") or websocket.headers.get(
        "authorization", "").removeprefix("Bearer ").strip()
    try:
        who = await run_in_threadpool(_authenticate, runtime, token)
    except AuthError as exc:
        await _refuse(websocket, POLICY_VIOLATION, exc.code)
        return
    hub = runtime.hub
    assert hub is not None
    key = (who.tenant, str(who.kind), who.id)
    if hub.count(key) >= runtime.config.api.max_ws_per_user:
        await _refuse(websocket, TRY_AGAIN_LATER, "too many connections")
        return
    await websocket.accept()
    session = Session(key=key, send=websocket.send_json)
    await hub.join(session)  # announced before the hello reads: see router.delivery.live, presence
    metrics.WEBSOCKETS.inc()
    try:
        last_seq = websocket.query_params.get("last_seq")
        frames = await run_in_threadpool(_hello, runtime, who,
                                         int(last_seq) if last_seq and last_seq.isdigit()
                                         else None)
        for frame in frames:
            await websocket.send_json(dict(frame))
        await _receive(websocket, runtime, who, session)
    except (WebSocketDisconnect, asyncio.CancelledError):
        pass
    finally:
        await hub.leave(session)
        metrics.WEBSOCKETS.dec()


async def _receive(websocket: WebSocket, runtime: Runtime, who: Principal,
                   session: Session) -> None:
    while True:
        raw = await websocket.receive_text()
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(message, dict) or message.get("type") != "ack":
            continue
        item_id = message.get("id")
        delivery_id = session.pending_acks.pop(item_id, None) if isinstance(item_id, int) else None
        if delivery_id is not None:
            await run_in_threadpool(_ack, runtime, who, delivery_id)
