"""Receiver-side endpoints (user token or code-user access token): the feed,
settings, push registrations and the live websocket stream."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import delete

from router.api.auth import Principal, user_only
from router.api.deps import PrincipalDep, RuntimeDep
from router.api.errors import documented
from router.api.service import check_settings
from router.core.enums import FeedView, PushKind
from router.core.errors import NotFound, Problem, ValidationFailed
from router.core.inputs import BIGINT_MAX, Input
from router.delivery import feed, frames, inbox
from router.directory import directory as d
from router.directory.push_validation import endpoint_problems
from router.directory.settings import SettingsIn
from router.runtime import Runtime
from router.store import models as m

log = logging.getLogger("herald.api")
routes = APIRouter(prefix="/v1/me", tags=["me"], responses=documented(401, 403, 404, 422, 503))


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class Unread(BaseModel):
    unread: int


class Counts(BaseModel):
    unread: int = Field(description="unread items (snoozed ones left out)")
    unseen: int = Field(description="of those, the ones not yet shown in an opened drawer "
                                    "(what a badge shows)")


# A cursor is "<microseconds since 1970 of the last item's time>-<its id>": any string of
# this pattern is a valid position, so the schema says exactly what is accepted.
CURSOR_PATTERN = r"^[0-9]{1,17}-[0-9]{1,18}$"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _cursor_out(cursor: tuple[datetime, int] | None) -> str | None:
    if cursor is None:
        return None
    stamp = cursor[0] if cursor[0].tzinfo else cursor[0].replace(tzinfo=UTC)
    return f"{(stamp - EPOCH) // MICROSECOND}-{cursor[1]}"


def _cursor_in(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    micros, _, item_id = value.partition("-")
    return EPOCH + int(micros) * MICROSECOND, int(item_id)


@routes.get("/notifications", response_model=Page)
def notifications(runtime: RuntimeDep, who: PrincipalDep,
                  limit: Annotated[int, Query(ge=1, le=100)] = 30,
                  cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
                  unread: Annotated[bool, Query(description="only the view's unread items "
                                                            "(`view=all&unread=true` is "
                                                            "`view=unread`)")] = False,
                  view: Annotated[FeedView, Query(description=(
                      "`all`: every item neither archived nor snoozed; `unread`: those "
                      "unread; `archived`; `snoozed`"))] = FeedView.ALL) -> Page:
    """Newest first; pass `next_cursor` back as `cursor` for the next page."""
    shown = FeedView.UNREAD if unread and view == FeedView.ALL else view
    with runtime.db.session() as s:
        rows, nxt = feed.page(s, who.reader, limit, _cursor_in(cursor), shown, unread)
        items = [feed.item_json(r) for r in rows]  # frames.FeedItem: the schema of a dict
        return Page(items=cast(list[dict[str, Any]], items), next_cursor=_cursor_out(nxt))


@routes.get("/notifications/unread-count", response_model=Counts)
def unread_count(runtime: RuntimeDep, who: PrincipalDep) -> Counts:
    """The unread count and, of it, the unseen count (a badge's number)."""
    with runtime.db.session() as s:
        found = feed.counts(s, who.reader)
        return Counts(unread=found.unread, unseen=found.unseen)


@routes.post("/notifications/{item_id}/read")
def read(runtime: RuntimeDep, who: PrincipalDep,
         item_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)]) -> dict[str, Any]:
    """Mark one item read; the receiver's other open sessions get an `unread` frame."""
    with runtime.db.session() as s:
        item, change = feed.mark_read(s, who.reader, item_id)
        if item is None:
            raise NotFound(f"notification {item_id} not found")
        shown = feed.item_json(item)
    _tell(runtime, who, change)
    return dict(shown)


@routes.post("/notifications/read-all", response_model=Unread)
def read_all(runtime: RuntimeDep, who: PrincipalDep) -> Unread:
    """Mark every unread item read; the receiver's open sessions get an `unread` frame."""
    with runtime.db.session() as s:
        change = feed.mark_all_read(s, who.reader)
        unread = change.frame["unread"] if change.frame else feed.unread_count(s, who.reader)
    _tell(runtime, who, change)
    return Unread(unread=unread)


# ---------------------------------------------------------------- inbox states (#16)

ITEM_EXAMPLE: dict[str, Any] = {
    "id": 4711, "seq": 90210, "unread": False, "created_at": "2026-12-07T08:15:00+00:00",
    "updated_at": "2026-12-07T08:15:00+00:00", "count": 1, "event_type": "ticket.created",
    "subject": {"kind": "ticket", "id": "T-1042", "number": "#1042"},
    "title": "New ticket #1042", "message": "Carla opened ticket #1042 “Elevator 3 stuck”.",
    "actor": {"name": "Carla", "avatar_url": None}, "icon": "ticket",
    "link": "https://app.example.com/tickets/T-1042", "seen": True, "archived": True,
    "snoozed_until": None}
AN_ITEM: dict[int | str, dict[str, Any]] = {200: {"description": "the item as the feed lists it now",
                 "content": {"application/json": {"example": ITEM_EXAMPLE}}}}
ItemId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
SNOOZE_MAX = timedelta(days=366)


class SeenIn(Input):
    ids: list[Annotated[int, Field(ge=1, le=BIGINT_MAX)]] = Field(
        min_length=1, max_length=100,
        description="the items an opened drawer showed (others' ids are passed over)")


class Seen(Counts):
    seen: list[int] = Field(description="the ids this call marked seen")


class ArchivedRead(Counts):
    archived: int = Field(description="how many read items were archived")


class SnoozeIn(Input):
    until: AwareDatetime = Field(description="when the item comes back: a future instant "
                                             "with its UTC offset, at most a year ahead")


@routes.post("/notifications/seen", response_model=Seen)
def seen(runtime: RuntimeDep, who: PrincipalDep, body: Annotated[SeenIn, Body(
        openapi_examples={"a drawer's first page": {"value": {"ids": [4711, 4710, 4702]}}})]
         ) -> Seen:
    """Mark items seen (an opened drawer showed them): the badge counts unseen unread items.
    The receiver's open sessions get an `unread` frame with `seen` and the counts."""
    with runtime.db.session() as s:
        marked, change = inbox.mark_seen(s, who.reader, body.ids)
        found = feed.counts(s, who.reader)
    _tell(runtime, who, change)
    return Seen(unread=found.unread, unseen=found.unseen, seen=marked)


@routes.post("/notifications/{item_id}/archive", response_model=frames.FeedItem,
             responses=AN_ITEM)
def archive(runtime: RuntimeDep, who: PrincipalDep, item_id: ItemId) -> frames.FeedItem:
    """Archive one item (an unread one is read too): it leaves the `unread` and `all` views
    for `archived`. The receiver's open sessions get an `unread` frame with `archived`."""
    with runtime.db.session() as s:
        item, change = inbox.archive(s, who.reader, item_id)
        shown = _found(item, item_id)
    _tell(runtime, who, change)
    return shown


@routes.post("/notifications/{item_id}/unarchive", response_model=frames.FeedItem,
             responses=AN_ITEM)
def unarchive(runtime: RuntimeDep, who: PrincipalDep, item_id: ItemId) -> frames.FeedItem:
    """Take an item back out of the archive; the open sessions get it as an `item` frame."""
    with runtime.db.session() as s:
        item, change = inbox.unarchive(s, who.reader, item_id)
        shown = _found(item, item_id)
    _tell(runtime, who, change)
    return shown


@routes.post("/notifications/archive-read", response_model=ArchivedRead)
def archive_read(runtime: RuntimeDep, who: PrincipalDep) -> ArchivedRead:
    """Archive every read item of the inbox; the open sessions get an `unread` frame with
    `archived_read_up_to_seq`."""
    with runtime.db.session() as s:
        archived, change = inbox.archive_read(s, who.reader)
        found = feed.counts(s, who.reader)
    _tell(runtime, who, change)
    return ArchivedRead(unread=found.unread, unseen=found.unseen, archived=archived)


@routes.post("/notifications/{item_id}/snooze", response_model=frames.FeedItem,
             responses=AN_ITEM)
def snooze(runtime: RuntimeDep, who: PrincipalDep, item_id: ItemId,
           body: Annotated[SnoozeIn, Body(openapi_examples={
               "tomorrow at nine in Berlin": {"value": {"until": "2026-12-08T09:00:00+01:00"}},
               "in one hour (UTC)": {"value": {"until": "2026-12-07T10:15:00Z"}}})]
           ) -> frames.FeedItem:
    """Snooze an item until a time: it leaves the views and counts, and then comes back to
    the top, unread and unseen, announced to every open session as an `item` frame with
    `woke: true`. The time is kept in the database: it holds across devices and restarts.
    Snoozing again sets a new time; an archived item leaves the archive."""
    now = datetime.now(UTC)
    if body.until <= now:
        raise ValidationFailed([Problem("must be in the future", path="until")])
    if body.until - now > SNOOZE_MAX:
        raise ValidationFailed([Problem("must be at most a year ahead", path="until")])
    with runtime.db.session() as s:
        item, change = inbox.snooze(s, who.reader, item_id, body.until)
        shown = _found(item, item_id)
    _tell(runtime, who, change)
    _schedule_wake(runtime, item_id, body.until)
    return shown


def _found(item: m.FeedItem | None, item_id: int) -> frames.FeedItem:
    if item is None:
        raise NotFound(f"notification {item_id} not found")
    return feed.item_json(item)


def _schedule_wake(runtime: Runtime, item_id: int, until: datetime) -> None:
    """The wake-up message, after the commit. The row is the timer: if Redis cannot take the
    message now, the workers' sweeper wakes the item a few seconds late."""
    try:
        runtime.workers.enqueue_wake({item_id: until})
    except Exception as exc:  # noqa: BLE001 - the snooze stands; the sweeper wakes it
        log.warning("snooze.enqueue_failed", extra={"item_id": item_id, "error": str(exc)})


def _tell(runtime: Runtime, who: Principal, change: feed.ReadChange) -> None:
    """After the commit: every open session of the receiver, on every replica."""
    if change.frame is not None:
        runtime.live.tell([{"tenant": who.tenant, "kind": str(who.kind), "id": who.id,
                            "frame": change.frame}])


@routes.get("/settings", response_model=SettingsIn)
def get_settings(runtime: RuntimeDep, who: PrincipalDep) -> SettingsIn:
    user_only(who)
    with runtime.db.session() as s:
        return d.get_settings(s, who.tenant, who.id)


@routes.put("/settings", response_model=SettingsIn)
def put_settings(runtime: RuntimeDep, who: PrincipalDep, body: SettingsIn) -> SettingsIn:
    user_only(who)
    check_settings(runtime, body)
    with runtime.db.session() as s:
        return d.put_settings(s, who.tenant, who.id, body)


class EndpointRef(Input):
    endpoint: str = Field(min_length=1, max_length=2000)


class DeviceIn(Input):
    token: str = Field(min_length=10, max_length=2000)
    platform: str = Field(default="android", max_length=20)


@routes.post("/push-subscriptions", status_code=201)
def add_push_subscription(runtime: RuntimeDep, who: PrincipalDep,
                          body: d.PushSubscriptionIn) -> dict[str, Any]:
    """Register a browser subscription; an endpoint Herald may not send to is a 422."""
    refused = endpoint_problems(runtime.config.outbound.allow, body.endpoint, "endpoint")
    if refused:
        raise ValidationFailed(refused)
    _register(runtime, user_only(who), PushKind.WEBPUSH, body.endpoint,
              p256dh=body.keys.p256dh, auth=body.keys.auth)
    return {"endpoint": body.endpoint, "registered": True}


@routes.delete("/push-subscriptions", status_code=204)
def remove_push_subscription(runtime: RuntimeDep, who: PrincipalDep,
                             body: Annotated[EndpointRef, Body()]) -> Response:
    _remove_target(runtime, user_only(who), PushKind.WEBPUSH, body.endpoint)
    return Response(status_code=204)


@routes.post("/devices", status_code=201)
def add_device(runtime: RuntimeDep, who: PrincipalDep, body: DeviceIn) -> dict[str, Any]:
    _register(runtime, user_only(who), PushKind.FCM, body.token)
    return {"token": body.token, "registered": True}


@routes.delete("/devices", status_code=204)
def remove_device(runtime: RuntimeDep, who: PrincipalDep,
                  body: Annotated[DeviceIn, Body()]) -> Response:
    _remove_target(runtime, user_only(who), PushKind.FCM, body.token)
    return Response(status_code=204)


def _register(runtime: Any, who: Principal, kind: PushKind, endpoint: str,
              **keys: str) -> None:
    """Upsert one push target of the caller (a browser re-registers on every load)."""
    with runtime.db.session() as s:
        _delete_targets(s, who, kind, endpoint)
        s.add(m.PushTarget(tenant_id=who.tenant, user_id=who.id, kind=kind, endpoint=endpoint,
                           **keys))


def _delete_targets(s: Any, who: Principal, kind: str, endpoint: str) -> int:
    result = s.execute(delete(m.PushTarget).where(
        m.PushTarget.tenant_id == who.tenant, m.PushTarget.user_id == who.id,
        m.PushTarget.kind == kind, m.PushTarget.endpoint == endpoint))
    return getattr(result, "rowcount", 0) or 0


def _remove_target(runtime: Any, who: Principal, kind: str, endpoint: str) -> None:
    with runtime.db.session() as s:
        if not _delete_targets(s, who, kind, endpoint):
            raise NotFound("no such registration")
