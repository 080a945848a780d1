"""What the preference center (`<herald-preferences>`) reads beyond the settings document:
the event types the receiver can get, with titles in their language and subject kinds;
each settings row's effective value and where it comes from; the receiver's own time
zone (which they may set here); a code user's one subscription, which they may end.

The settings document itself is read and written whole through `/v1/me/settings`.
Everything is the caller's own: no id in these paths names anyone else.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from router.api.auth import Principal, code_user_only, user_only
from router.api.deps import PrincipalDep, RuntimeDep
from router.api.errors import documented
from router.core.enums import Channel, Origin, PrefsSource, ReceiverKind, Strategy, SubjectKind, UserKind
from router.core.errors import NotFound
from router.core.inputs import Input
from router.directory import directory as d
from router.directory.quiet import DEFAULT_ZONE, check_zone, zone_for
from router.directory.settings import UserFacts, check_row_keys, prefs_source, receivable
from router.ruleset.rulefile import ChannelPrefs, RuleSet
from router.store import models as m

routes = APIRouter(prefix="/v1/me", tags=["preferences"], responses=documented(401, 403, 404, 422, 503))
FALLBACK_LANGUAGE = "en"


class Prefs(BaseModel):
    channels: list[Channel] = Field(description="in the order they are tried")
    origin: list[Origin]
    strategy: Strategy

    @classmethod
    def of(cls, prefs: ChannelPrefs) -> Prefs:
        return cls(channels=list(prefs.channels), origin=sorted(prefs.origin), strategy=prefs.strategy)


class Row(BaseModel):
    key: str = Field(description="'all' or an event type")
    effective: Prefs = Field(description="what applies now")
    source: PrefsSource = Field(description=(
        "own: the receiver's row for it; all: their `all` row; default: the rule file"))
    default: Prefs = Field(description=(
        "the rule file's value: what applies without the receiver's row for it and, "
        "for an event type, without their `all` row"))


class EventType(BaseModel):
    type: str
    title: str = Field(description="in the receiver's language where the catalogue has it")
    subject: SubjectKind
    critical: bool = Field(description="goes through quiet hours")


class TimeZone(BaseModel):
    time_zone: str | None = Field(description="the user's own IANA zone; null: the tenant's")
    effective: str = Field(description="the zone in force: their own, else the tenant's, else UTC")
    default: str = Field(description="the tenant's zone, else UTC: what null follows")


class Receiver(BaseModel):
    kind: ReceiverKind
    id: str
    name: str
    language: str = Field(description="theirs, else the tenant's, else en")


class Preferences(BaseModel):
    receiver: Receiver
    event_types: list[EventType] = Field(description=(
        "the catalogued types some rule could send this receiver, grouped by subject kind"))
    rows: list[Row] = Field(description="the `all` row, then one per event type above")
    time_zone: TimeZone
    zones: list[str] = Field(description="the IANA zones a user may choose")
    unknown_rows: list[str] = Field(description=(
        "the user's rows for event types the catalogue no longer has: a settings document "
        "holding them is refused (422), so the preference center leaves them out"))


class TimeZoneIn(Input):
    model_config = ConfigDict(extra="forbid")

    time_zone: str | None = Field(max_length=64, examples=["Europe/Berlin"],
                                  description="an IANA name; null: the tenant's zone",
                                  json_schema_extra={"enum": [*sorted(available_timezones()), None]})

    @field_validator("time_zone")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        return value if value is None else check_zone(value)


class Subscription(BaseModel):
    id: str
    subject: dict[str, str] = Field(description="kind, id and number of the one subject")
    channels: list[Channel]
    email: str | None = Field(description="the address, masked (v•••r@example.com)")
    active: bool = Field(description="false once unsubscribed")
    language: str


@routes.get("/preferences", response_model=Preferences)
def preferences(runtime: RuntimeDep, who: PrincipalDep) -> Preferences:
    """Everything the preference center shows besides the settings document: the event
    types this user can get, each row's effective value and its source, the time zone."""
    ruleset = runtime.engine.ruleset
    with runtime.db.session() as s:
        user, tenant = _directory_user(s, user_only(who))
        settings = d.get_settings(s, who.tenant, who.id)
    advanced = {key: row.model_dump() for key, row in settings.advanced.items()}
    language = user.language or tenant.default_language or FALLBACK_LANGUAGE
    specs = sorted(receivable(ruleset, UserFacts(UserKind(user.kind), user.id,
                                                 frozenset(user.roles or ()))),
                   key=lambda spec: list(SubjectKind).index(spec.subject))
    return Preferences(
        receiver=Receiver(kind=who.kind, id=user.id, name=user.name, language=language),
        event_types=[EventType(type=spec.type, title=ruleset.title(spec.type, language),
                               subject=spec.subject, critical=spec.critical) for spec in specs],
        rows=[_row(advanced, key, ruleset) for key in ("all", *(spec.type for spec in specs))],
        time_zone=_zone_of(user, tenant), zones=zones(),
        unknown_rows=check_row_keys(settings, ruleset))


def _directory_user(s: Session, who: Principal) -> tuple[m.User, m.Tenant]:
    user, tenant = s.get(m.User, (who.tenant, who.id)), s.get(m.Tenant, who.tenant)
    if user is None or tenant is None:  # deleted since the token was checked
        raise NotFound(f"user {who.id!r} not found")
    return user, tenant


def _row(advanced: dict[str, Any], key: str, ruleset: RuleSet) -> Row:
    prefs, source = prefs_source(advanced, key, ruleset)
    return Row(key=key, effective=Prefs.of(prefs), source=source,
               default=Prefs.of(ruleset.default_for(key)))


def _zone_of(user: m.User, tenant: m.Tenant) -> TimeZone:
    return TimeZone(time_zone=user.time_zone,
                    effective=zone_for(user.time_zone, tenant.default_time_zone).key,
                    default=zone_for(tenant.default_time_zone).key)


@lru_cache(maxsize=1)
def zones() -> list[str]:
    """Region/City zones and UTC (the aliases in Etc/, SystemV/ and the like left out)."""
    hidden = ("Etc/", "SystemV/", "posix", "right/", "US/", "Canada/", "Mexico/", "Brazil/",
              "Chile/")
    return [DEFAULT_ZONE, *sorted(z for z in available_timezones()
                                  if "/" in z and not z.startswith(hidden))]


@routes.get("/time-zone", response_model=TimeZone)
def get_time_zone(runtime: RuntimeDep, who: PrincipalDep) -> TimeZone:
    with runtime.db.session() as s:
        return _zone_of(*_directory_user(s, user_only(who)))


@routes.put("/time-zone", response_model=TimeZone)
def put_time_zone(runtime: RuntimeDep, who: PrincipalDep,
                  body: Annotated[TimeZoneIn, Body()]) -> TimeZone:
    """Set the user's own time zone (quiet hours and the daily digest are in it); null
    follows the tenant's. A directory upsert that leaves `time_zone` out keeps it."""
    with runtime.db.session() as s:
        user, tenant = _directory_user(s, user_only(who))
        d.set_time_zone(s, who.tenant, who.id, body.time_zone)
        return _zone_of(user, tenant)


@routes.get("/subscription", response_model=Subscription)
def subscription(runtime: RuntimeDep, who: PrincipalDep) -> Subscription:
    """A code user's sign-up for the one ticket or video session of their access token."""
    with runtime.db.session() as s:
        sub = s.get(m.Subscription, (who.tenant, code_user_only(who).id))
        if sub is None:
            raise NotFound("the subscription of this access token is gone")
        return _subscription_out(s, sub)


@routes.delete("/subscription", status_code=204)
def unsubscribe(runtime: RuntimeDep, who: PrincipalDep) -> Response:
    """End the code user's subscription: no more email or push about the subject. The
    access token keeps showing what already arrived until it expires."""
    with runtime.db.session() as s:
        d.end_subscription(s, who.tenant, code_user_only(who).id)
    return Response(status_code=204)


def _subscription_out(s: Session, sub: m.Subscription) -> Subscription:
    subject = s.get(m.SubjectRow, (sub.tenant_id, sub.subject_kind, sub.subject_id))
    tenant = s.get(m.Tenant, sub.tenant_id)
    language = (sub.language or (subject.language if subject else None)
                or (tenant.default_language if tenant else None) or FALLBACK_LANGUAGE)
    return Subscription(
        id=sub.id, channels=[Channel(c) for c in sub.channels or ()],
        subject={"kind": sub.subject_kind, "id": sub.subject_id,
                 "number": (subject.number if subject else "") or sub.subject_id},
        email=_masked(sub.email), active=sub.active, language=language)


def _masked(address: str | None) -> str | None:
    if not address:
        return None
    local, _, domain = address.rpartition("@")
    shown = local[0] + "•••" + (local[-1] if len(local) > 2 else "")
    return f"{shown}@{domain}"
