"""The one channel interface: the contracts between the delivery layer and ``channels/``.

An adapter takes a batch of :class:`Job` snapshots (plain data, no database
objects) and returns one :class:`Outcome` per delivery id. Vendor exceptions
never leave an adapter: they are translated into outcomes at the boundary.

The worker calls, in order: ``prepare`` (reads what the batch needs, inside a
short DB session), ``send`` (network I/O, no DB session held), then
``after`` (DB side effects such as dropping a gone subscription).

An adapter sees the process only through a :class:`ChannelContext`: the config, the
live publisher, the database handle, a clock and the event catalogue's options. It
never sees the runtime (import-linter keeps ``channels`` off ``router.runtime``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypedDict

from sqlalchemy.orm import Session

from router.core.config import Config
from router.core.enums import Channel, OutcomeStatus, ReceiverKind, Strategy
from router.delivery.live import Addressed
from router.store.db import Database
from router.store.models import utcnow

ReceiverKey = tuple[str, str, str]  # tenant, receiver kind, receiver id


class DigestItem(TypedDict):
    """One event listed in a digest message."""

    title: str
    message: str
    link: str
    at: str  # ISO 8601, when it was routed
    event_type: str
    event_id: str


class Digest(TypedDict):
    count: int  # events in the digest (``items`` lists the latest, at most 50)
    items: list[DigestItem]


class DeliveryContent(TypedDict, total=False):
    """What routing rendered for one delivery (stored in ``deliveries.content``): the
    texts in the receiver's language and where they point. Browser deliveries under
    ``all`` store none (the feed item holds it)."""

    language: str
    title: str
    message: str
    link: str
    email: str | None
    name: str
    created_at: str  # ISO 8601, when routing wrote it (push TTLs count from here)
    quiet_until: str  # the receiver was in quiet hours: their end, local ("07:00 Europe/Berlin")
    quiet_until_at: str  # ... and as an ISO 8601 instant (later steps of a sequence wait too)
    fold: dict[str, str]  # it waited for a digest: {why, until, label, note} (delivery.folding)
    digest_title: str  # the title of a digest of this type, "{count}" left for the count
    digest: Digest  # a merged job: the events this one message lists (delivery.digests)


class StoredEvent(TypedDict, total=False):
    """An event as stored at publishing (``events.payload``): the validated
    ``router.routing.events.Event``, dumped to JSON."""

    id: str
    type: str
    tenant: str
    occurred_at: str
    actor: dict[str, Any] | None
    subject: dict[str, Any]
    data: dict[str, Any]
    signups: list[dict[str, Any]]


@dataclass(frozen=True)
class Outcome:
    status: OutcomeStatus
    detail: str = ""
    retry_after: float | None = None
    provider_ref: str | None = None
    gone: tuple[str, ...] = ()  # addresses (endpoints, tokens) the provider says are gone

    @classmethod
    def sent(cls, detail: str = "", provider_ref: str | None = None) -> Outcome:
        return cls(OutcomeStatus.SENT, detail, provider_ref=provider_ref)

    @classmethod
    def retry(cls, detail: str, retry_after: float | None = None) -> Outcome:
        return cls(OutcomeStatus.RETRY, detail, retry_after=retry_after)

    @classmethod
    def failed(cls, detail: str) -> Outcome:
        return cls(OutcomeStatus.FAILED, detail)


@dataclass
class Job:
    """Everything an adapter needs to send one delivery, loaded before any I/O."""

    id: int
    tenant: str
    channel: Channel
    receiver_kind: ReceiverKind
    receiver_id: str
    strategy: Strategy
    attempts: int
    content: DeliveryContent
    event: StoredEvent
    feed_item_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class LivePublisher(Protocol):
    """Publishes live feed entries to every open websocket session, on any replica, and
    tells who has one."""

    def publish(self, entries: Sequence[Mapping[str, Any]]) -> None: ...

    def tell(self, addressed: list[Addressed]) -> bool: ...

    def online(self, keys: Iterable[ReceiverKey]) -> set[ReceiverKey] | None: ...


@dataclass(frozen=True)
class Settled:
    """A browser delivery under `all`, settled at routing without a row: its feed item is
    the record; the browser channel announces it to open sessions after the commit."""

    event_pk: int
    tenant: str
    receiver_kind: str
    receiver_id: str
    feed_item_id: int

    @property
    def key(self) -> ReceiverKey:
        return self.tenant, self.receiver_kind, self.receiver_id


@dataclass
class Announcement:
    """What a route batch leaves to the browser channel once it has committed."""

    settled: list[Settled] = field(default_factory=list)
    quiet: set[ReceiverKey] = field(default_factory=set)  # unread count changed, no item frame
    awaiting: list[int] = field(default_factory=list)  # first_success browser rows (ids)
    routed_at: datetime = field(default_factory=utcnow)

    def __bool__(self) -> bool:
        return bool(self.settled or self.quiet or self.awaiting)

    def merge(self, other: Announcement) -> None:
        self.settled += other.settled
        self.quiet |= other.quiet
        self.awaiting += other.awaiting
        self.routed_at = max(self.routed_at, other.routed_at)


class EventOptions(Protocol):
    """What the event catalogue says about an event type that a channel needs."""

    @property
    def ttl_s(self) -> int | None: ...

    @property
    def urgency(self) -> str: ...


def no_event_options(_event_type: str) -> EventOptions | None:
    return None


@dataclass(frozen=True)
class ChannelContext:
    """Everything an adapter may use from the process that runs it."""

    config: Config
    live: LivePublisher
    db: Database | None = None  # adapters get sessions in prepare/after; None in tools, benches
    event_options: Callable[[str], EventOptions | None] = no_event_options  # the rule set in force
    now: Callable[[], datetime] = utcnow


class Adapter(ABC):
    """Base class: identity and limits as class attributes, one send per batch."""

    channel: ClassVar[Channel]
    batch_size: ClassVar[int] = 100
    record_every: ClassVar[int] = 1000  # outcomes are committed after this many sends

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.config = ctx.config

    def check(self) -> None:
        """Raise ConfigError when the channel cannot work with the current config."""

    def prepare(self, s: Session, jobs: list[Job]) -> None:
        """Load per-batch data (addresses, targets, tokens) into ``job.extra``."""

    @abstractmethod
    def send(self, jobs: list[Job]) -> dict[int, Outcome]:
        """Deliver the batch; one outcome per job id. Never raises vendor errors."""

    def after(self, s: Session, jobs: list[Job], outcomes: dict[int, Outcome]) -> None:
        """Record side effects of the outcomes (e.g. forget gone addresses)."""

    def close(self) -> None:
        """Release connections held between batches."""
