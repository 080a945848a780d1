"""The AsyncAPI 3.0 document of the live websocket, built from ``router.delivery.frames``
(served at ``/asyncapi.json``; the payload schemas are the frames' own)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter

from router import __version__
from router.delivery import frames
from router.delivery.frames import POLICY_VIOLATION, TRY_AGAIN_LATER

SCHEMAS = "#/components/schemas/{model}"
CHANNEL = "stream"
# message name -> (frame type, direction seen from Herald, summary)
MESSAGES: dict[str, tuple[type, str, str]] = {
    "hello": (frames.Hello, "send", "The unread count, first frame of every session."),
    "item": (frames.Item, "send", "A new, bumped, woken or restored feed item and the new "
                                  "unread count."),
    "unread": (frames.Unread, "send", "The inbox changed without a new item (read, read-all, "
                                      "cleared, seen, archived, snoozed) and the counts now."),
    "ack": (frames.Ack, "receive", "The client showed an item."),
}

DESCRIPTION = f"""\
One websocket per open inbox: `GET /v1/me/stream?token=<user token or code-user access token>`
(browsers cannot set headers; `Authorization: Bearer` works too). JSON text frames.

* On connect the server sends `hello`. Reconnect with `&last_seq=<highest item seq seen>`:
  the items written meanwhile follow the `hello` as `item` frames, oldest first.
* Every open session of the receiver, on every API replica, gets each `item` and `unread`
  frame. Pub/sub is fire-and-forget: the feed (`GET /v1/me/notifications`) is the record.
* Counts: `unread` (unread items, snoozed ones left out) and, only when it differs, `unseen`
  (unread items not yet shown in an opened drawer: what a badge shows). A snoozed item's
  wake-up arrives as an `item` frame with `woke: true`.
* Answer each `item` with an `ack` (`first_success`: the browser step succeeded).
* Frames may gain fields: ignore the ones you do not know.

A refused connection is accepted, then closed: **{POLICY_VIOLATION}** (policy violation;
the reason is the error code, e.g. `auth.required`, `token.expired`, `token.invalid`,
`token.revoked`: reconnecting with the same token does not help) or **{TRY_AGAIN_LATER}**
(try again later: the user has too many open sessions, `api.max_ws_per_user`).
"""


def document(public_url: str) -> dict[str, Any]:
    """The whole AsyncAPI document for a deployment reachable at ``public_url``."""
    schemas: dict[str, Any] = {}
    messages = {name: _message(name, frame, summary, schemas)
                for name, (frame, _direction, summary) in MESSAGES.items()}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Herald live stream", "version": __version__,
                 "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {"herald": _server(public_url)},
        "channels": {CHANNEL: _channel()},
        "operations": _operations(),
        "components": {"messages": messages, "schemas": schemas},
    }


def _message(name: str, frame: type, summary: str, schemas: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(frame).json_schema(ref_template=SCHEMAS)
    schemas.update(schema.pop("$defs", {}))
    schemas[frame.__name__] = schema
    return {"name": name, "title": frame.__name__, "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": SCHEMAS.format(model=frame.__name__)}}


def _server(public_url: str) -> dict[str, Any]:
    url = urlsplit(public_url)
    return {"host": url.netloc, "protocol": "wss" if url.scheme == "https" else "ws",
            "description": "this deployment (its public_url)"}


def _channel() -> dict[str, Any]:
    query = {"type": "object", "required": ["token"], "properties": {
        "token": {"type": "string", "description": "user token or code-user access token"},
        "last_seq": {"type": "integer", "minimum": 0,
                     "description": "replay the items written after this seq"}}}
    return {"address": "/v1/me/stream", "title": "The receiver's live inbox",
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in MESSAGES},
            "bindings": {"ws": {"method": "GET", "query": query, "bindingVersion": "0.1.0"}}}


def _operations() -> dict[str, Any]:
    return {f"{direction}{name.capitalize()}": {
        "action": direction, "summary": summary,
        "channel": {"$ref": f"#/channels/{CHANNEL}"},
        "messages": [{"$ref": f"#/channels/{CHANNEL}/messages/{name}"}]}
        for name, (_frame, direction, summary) in MESSAGES.items()}
