"""The frames of the live websocket ``WS /v1/me/stream``, defined once.

The server builds its frames as these TypedDicts (mypy checks every place that builds
one) and ``router.asyncapi`` derives the AsyncAPI document served at ``/asyncapi.json``
from them, so the document cannot drift from what is sent.

server -> client: ``hello`` (once, on connect), ``item`` (a new, bumped, woken or restored
feed item), ``unread`` (the inbox changed without a new item: read, read-all, cleared,
seen, archived, snoozed).
client -> server: ``ack`` (an ``item`` was shown).

Counts: ``unread`` is every unread item not snoozed; ``unseen`` (what a badge shows) is
the unread items not yet shown in an opened drawer. A frame carries ``unseen`` only when it
differs from ``unread``: a client that never marks items seen gets the frames it always got.
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
    seen: Annotated[bool, Field(description="shown in an opened drawer since it was last "
                                            "written (POST .../seen)")]
    archived: Annotated[bool, Field(description="archived: in the `archived` view only")]
    snoozed_until: Annotated[str | None, Field(
        description="snoozed: hidden until then (the `snoozed` view), when it comes back "
                    "to the top, unread", json_schema_extra={"format": "date-time"})]


UNSEEN = Field(description="the receiver's unseen count (unread items not yet shown in an "
                           "opened drawer), when it differs from `unread`")


class Hello(TypedDict):
    """First frame of every session: the receiver's unread count. With ?last_seq= the
    missed items follow as ``item`` frames, oldest first."""

    type: Literal["hello"]
    unread: int
    unseen: NotRequired[Annotated[int, UNSEEN]]


class Item(TypedDict):
    """A feed item was written or bumped (stacked), woke from a snooze, or was taken back
    out of the archive. Answer with an ``ack``."""

    type: Literal["item"]
    item: FeedItem
    unread: Annotated[int, Field(description="the receiver's unread count after this item")]
    unseen: NotRequired[Annotated[int, UNSEEN]]
    woke: NotRequired[Annotated[bool, Field(
        description="the item was snoozed and its time came: it is back on top, unread")]]


class Snoozed(TypedDict):
    """An item snoozed until a time."""

    id: int
    until: Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Unread(TypedDict):
    """The receiver's inbox changed without a new item, in any of its sessions: items were
    read, seen, archived or snoozed, or hidden; the counts now."""

    type: Literal["unread"]
    unread: Annotated[int, Field(description="the receiver's unread count now")]
    unseen: NotRequired[Annotated[int, UNSEEN]]
    read: NotRequired[Annotated[list[int], Field(
        description="ids of the items just marked read (POST .../{id}/read)")]]
    read_up_to_seq: NotRequired[Annotated[int, Field(
        description="every item with seq <= this is read now (POST .../read-all)")]]
    hidden_up_to_seq: NotRequired[Annotated[int, Field(
        description="code users: items with seq <= this are hidden now (the code's "
                    "notifications were cleared)")]]
    seen: NotRequired[Annotated[list[int], Field(
        description="ids of the items just marked seen (POST .../seen)")]]
    archived: NotRequired[Annotated[list[int], Field(
        description="ids of the items just archived (and so read): they leave the `unread` "
                    "and `all` views (POST .../{id}/archive)")]]
    archived_read_up_to_seq: NotRequired[Annotated[int, Field(
        description="every read item with seq <= this is archived now (POST .../archive-read)")]]
    snoozed: NotRequired[Annotated[list[Snoozed], Field(
        description="items just snoozed: they leave the views until they wake (an `item` "
                    "frame with `woke`)")]]


class Ack(TypedDict):
    """The client showed an ``item`` (for ``first_success``: the browser step succeeded)."""

    type: Literal["ack"]
    id: Annotated[int, Field(description="the item's id")]
    seq: NotRequired[int]


ServerFrame = Hello | Item | Unread
