"""The frames of the live websocket ``WS /v1/me/stream``, defined once.

The server builds its frames as these TypedDicts (mypy checks every place that builds
one) and ``router.asyncapi`` derives the AsyncAPI document served at ``/asyncapi.json``
from them, so the document cannot drift from what is sent.

server -> client: ``hello`` (once, on connect), ``item`` (a new or bumped feed item),
``unread`` (the unread count changed without a new item: read, read-all, cleared).
client -> server: ``ack`` (an ``item`` was shown).
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs this one below Python 3.12

# close codes of a refused connection (accepted first, so the code reaches the client)
POLICY_VIOLATION = 1008  # reason: the error code (token.expired, ...); retrying does not help
TRY_AGAIN_LATER = 1013  # too many open sessions for this user


class SubjectRef(TypedDict):
    """The subject a feed item is about."""

    kind: Annotated[str, Field(description="ticket, task, video_session, code or device")]
    id: str
    number: Annotated[str, Field(description="the number shown to people, e.g. #1042")]


class ActorRef(TypedDict):
    """Who caused the event (the directory user's avatar when the event carried none)."""

    name: str
    avatar_url: str | None


class FeedItem(TypedDict):
    """One feed item, as ``GET /v1/me/notifications`` shows it."""

    id: int
    seq: Annotated[int, Field(description="rises on every write of any item (new or stack "
                                          "bump): reconnect with ?last_seq=<highest seen>")]
    unread: bool
    created_at: Annotated[str, Field(json_schema_extra={"format": "date-time"})]
    updated_at: Annotated[str, Field(json_schema_extra={"format": "date-time"})]
    count: Annotated[int, Field(description="events stacked on this item", ge=1)]
    event_type: str
    subject: SubjectRef
    title: str
    message: str
    actor: ActorRef | None
    icon: Annotated[str, Field(description="the subject kind, to pick an icon")]
    link: Annotated[str, Field(description="deep link into the host application")]


class Hello(TypedDict):
    """First frame of every session: the receiver's unread count. With ?last_seq= the
    missed items follow as ``item`` frames, oldest first."""

    type: Literal["hello"]
    unread: int


class Item(TypedDict):
    """A feed item was written or bumped (stacked). Answer with an ``ack``."""

    type: Literal["item"]
    item: FeedItem
    unread: Annotated[int, Field(description="the receiver's unread count after this item")]


class Unread(TypedDict):
    """The receiver's unread count changed without a new item, in any of its sessions."""

    type: Literal["unread"]
    unread: Annotated[int, Field(description="the receiver's unread count now")]
    read: NotRequired[Annotated[list[int], Field(
        description="ids of the items just marked read (POST .../{id}/read)")]]
    read_up_to_seq: NotRequired[Annotated[int, Field(
        description="every item with seq <= this is read now (POST .../read-all)")]]
    hidden_up_to_seq: NotRequired[Annotated[int, Field(
        description="code users: items with seq <= this are hidden now (the code's "
                    "notifications were cleared)")]]


class Ack(TypedDict):
    """The client showed an ``item`` (for ``first_success``: the browser step succeeded)."""

    type: Literal["ack"]
    id: Annotated[int, Field(description="the item's id")]
    seq: NotRequired[int]


ServerFrame = Hello | Item | Unread
