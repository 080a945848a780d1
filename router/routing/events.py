"""The event a service publishes, validated with pydantic.

A bad event is refused with one ValidationFailed listing every problem by field
path (``subject.kind: Input should be 'ticket', 'task', ...``). The same model is
the request body schema of the publish endpoints in ``/openapi.json``.

An event on a ticket or video session may carry ``signups``: code users who, while
creating it, asked for email and/or push notifications about it. They are stored
as subscriptions with the event (router.routing.pipeline.publish), so they hear about that
very event.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from router.core.enums import Channel, SubjectKind, Visibility
from router.core.errors import Problem, ValidationFailed
from router.core.inputs import LANGUAGE_PATTERN, Id, Input
from router.directory.directory import EMAIL_PATTERN, PushSubscriptionIn, SubscriptionIn
from router.directory.quiet import check_zone

_ID = Field(min_length=1, max_length=200)
SIGNUP_SUBJECTS = (SubjectKind.TICKET, SubjectKind.VIDEO_SESSION)
MAX_SIGNUPS = 20


class Actor(Input):
    model_config = ConfigDict(extra="forbid")

    id: str = _ID
    kind: str = Field(default="employee", max_length=40)
    name: str = Field(default="", max_length=300)
    avatar_url: str = Field(default="", max_length=2000)


class Subject(Input):
    model_config = ConfigDict(extra="forbid")

    kind: SubjectKind
    id: str = _ID
    number: str = Field(min_length=1, max_length=100)
    template_id: str | None = Field(default=None, max_length=200)
    group: str | None = Field(default=None, max_length=200)
    code_id: str | None = Field(default=None, max_length=200)
    customer_org_id: str | None = Field(default=None, max_length=200)
    creator_id: str | None = Field(default=None, max_length=200)
    participants: list[Id] = Field(default_factory=list, max_length=1000)
    visibility: Visibility | None = None  # None: the stored subject's, else public
    language: str | None = Field(default=None, max_length=20)


class SignUp(Input):
    """A code user asking, while creating the subject, for its notifications."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"properties": {"email": {"type": "string"}}, "required": ["email"]},
        {"properties": {"push_subscription": {"type": "object"}},
         "required": ["push_subscription"]}]})

    id: str | None = Field(default=None, min_length=1, max_length=200, description=(
        "The subscription's id (to end it later with DELETE /v1/subscriptions/{id}); "
        "default: derived from the event id and the sign-up's position."))
    email: str | None = Field(default=None, max_length=320, pattern=EMAIL_PATTERN)
    push_subscription: PushSubscriptionIn | None = Field(
        default=None, description="The browser's PushSubscription.toJSON().")
    language: str | None = Field(default=None, max_length=20, pattern=LANGUAGE_PATTERN,
                                 description="default: the subject's language")
    time_zone: str | None = Field(default=None, max_length=64, examples=["Europe/Berlin"],
                                  description="IANA name; default: the tenant's, else UTC")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return value if value is None else check_zone(value)

    @model_validator(mode="after")
    def _some_channel(self) -> SignUp:
        if not self.email and not self.push_subscription:
            raise ValueError("give an email address, a push_subscription or both")
        return self

    def subscription(self, event: Event, position: int) -> SubscriptionIn:
        channels = [c for c, ok in ((Channel.EMAIL, self.email),
                                    (Channel.PUSH, self.push_subscription)) if ok]
        return SubscriptionIn.model_validate({
            "id": self.id or _signup_id(event.id, position),
            "subject_kind": event.subject.kind, "subject_id": event.subject.id,
            "code_id": event.subject.code_id or None, "email": self.email,
            "push_subscription": self.push_subscription, "channels": channels,
            "language": self.language or event.subject.language, "time_zone": self.time_zone,
            "created_by": "code_user"})


def _signup_id(event_id: str, position: int) -> str:
    return f"signup-{hashlib.sha256(event_id.encode()).hexdigest()[:32]}-{position}"


class Event(Input):
    # sign-ups only on a ticket or video session
    model_config = ConfigDict(extra="forbid", json_schema_extra={"if": {
        "properties": {"subject": {"properties": {"kind": {"not": {"enum": list(SIGNUP_SUBJECTS)}}}}}},
        "then": {"properties": {"signups": {"maxItems": 0}}}, "examples": [{
        "id": "evt-4711", "type": "ticket.created",
        "actor": {"id": "code-user", "kind": "code_user", "name": "Visitor"},
        "subject": {"kind": "ticket", "id": "T-4711", "number": "#4711",
                    "template_id": "tpl-elevators", "code_id": "QR-17", "language": "de"},
        "data": {"title": "Elevator stuck", "message": "Between floors 3 and 4"},
        "signups": [{"email": "visitor@example.com", "language": "de"}]}]})

    id: str = _ID
    type: str = Field(min_length=1, max_length=100)
    tenant: str = Field(default="", max_length=100, json_schema_extra={"readOnly": True},
                        description="The API key's tenant; if given, it must be that one.")
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    actor: Actor | None = None
    subject: Subject
    data: dict[str, Any] = Field(default_factory=dict)
    signups: list[SignUp] = Field(default_factory=list, max_length=MAX_SIGNUPS, description=(
        "Code users signing up for this ticket or video session while creating it: they "
        "receive this event's notifications and the later ones (stored once per event id)."))

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            raise ValueError("must be an ISO 8601 date-time string")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("signups")
    @classmethod
    def _signups_on_code_subjects(cls, value: list[SignUp], info: ValidationInfo) -> list[SignUp]:
        subject = info.data.get("subject")
        if value and subject is not None and subject.kind not in SIGNUP_SUBJECTS:
            raise ValueError("code users sign up for a ticket or a video session only")
        return value

    @property
    def actor_id(self) -> str | None:
        return self.actor.id if self.actor else None

    def as_doc(self) -> dict[str, Any]:
        """The event as plain JSON data: what rules see and what is stored."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"signups"})


def problems_from(exc: ValidationError, prefix: str = "") -> list[Problem]:
    return [
        Problem(message=err["msg"], path=prefix + ".".join(str(p) for p in err["loc"]))
        for err in exc.errors()
    ]


def parse_event(
    doc: Any, known_types: Iterable[str] | None = None, prefix: str = ""
) -> Event:
    """Validate one event document; every problem is reported at once."""
    problems: list[Problem] = []
    try:
        event = Event.model_validate(doc)
    except ValidationError as exc:
        problems = problems_from(exc, prefix)
        event = None
    doc_type = doc.get("type") if isinstance(doc, dict) else None
    if known_types is not None and isinstance(doc_type, str):
        problems += unknown_type(doc_type, known_types, prefix)
    if problems or event is None:
        raise ValidationFailed(problems)
    return event


def unknown_type(event_type: str, known_types: Iterable[str], prefix: str = "") -> list[Problem]:
    """A problem if the type is not in the catalogue, with the closest known type."""
    known = known_types if isinstance(known_types, set | frozenset | dict) else set(known_types)
    if not event_type or event_type in known:
        return []
    guess = difflib.get_close_matches(event_type, list(known), n=1)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return [Problem(f"unknown event type {event_type!r}{hint}", path=prefix + "type")]
