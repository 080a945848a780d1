"""The event a service publishes, validated with pydantic.

A bad event is refused with one ValidationFailed listing every problem by field
path (``subject.kind: Input should be 'ticket', 'task', ...``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from router.enums import SubjectKind, Visibility
from router.errors import Problem, ValidationFailed

_ID = Field(min_length=1, max_length=200)


class Actor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = _ID
    kind: str = Field(default="employee", max_length=40)
    name: str = Field(default="", max_length=300)
    avatar_url: str = Field(default="", max_length=2000)


class Subject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: SubjectKind
    id: str = _ID
    number: str = Field(min_length=1, max_length=100)
    template_id: str | None = Field(default=None, max_length=200)
    group: str | None = Field(default=None, max_length=200)
    code_id: str | None = Field(default=None, max_length=200)
    customer_org_id: str | None = Field(default=None, max_length=200)
    creator_id: str | None = Field(default=None, max_length=200)
    participants: list[str] = Field(default_factory=list, max_length=1000)
    visibility: Visibility | None = None  # None: the stored subject's, else public
    language: str | None = Field(default=None, max_length=20)


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = _ID
    type: str = Field(min_length=1, max_length=100)
    tenant: str = Field(default="", max_length=100)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    actor: Actor | None = None
    subject: Subject
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @property
    def actor_id(self) -> str | None:
        return self.actor.id if self.actor else None

    def as_doc(self) -> dict[str, Any]:
        """The event as plain JSON data: what rules see and what is stored."""
        return self.model_dump(mode="json", exclude_none=True)


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
    known = set(known_types) if known_types is not None else None
    doc_type = doc.get("type") if isinstance(doc, dict) else None
    if known is not None and isinstance(doc_type, str) and doc_type and doc_type not in known:
        problems.append(Problem(f"unknown event type {doc_type!r}", path=prefix + "type"))
    if problems or event is None:
        raise ValidationFailed(problems)
    return event
