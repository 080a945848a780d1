"""Every state, channel, queue and kind Herald knows, in one place.

No status string literal lives anywhere else: compare against these members.
"""

from enum import StrEnum


class Channel(StrEnum):
    BROWSER = "browser"
    PUSH = "push"
    EMAIL = "email"


DEFERRABLE = (Channel.PUSH, Channel.EMAIL)  # quiet hours hold these; the feed goes at once


class Strategy(StrEnum):
    ALL = "all"
    FIRST_SUCCESS = "first_success"


class Origin(StrEnum):
    ME = "me"
    OTHERS = "others"


class PrefsSource(StrEnum):
    """Where the channel settings that apply to an event type come from (DESIGN §2)."""

    OWN = "own"  # the receiver's row for the event type
    ALL = "all"  # the receiver's `all` row
    DEFAULT = "default"  # the rule file's defaults


class SubjectKind(StrEnum):
    TICKET = "ticket"
    TASK = "task"
    VIDEO_SESSION = "video_session"
    CODE = "code"
    DEVICE = "device"


class Visibility(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


class UserKind(StrEnum):
    EMPLOYEE = "employee"
    CUSTOMER = "customer"


class ReceiverKind(StrEnum):
    EMPLOYEE = "employee"
    CUSTOMER = "customer"
    CODE_USER = "code_user"


class Submodule(StrEnum):
    NOTIFICATION_RECEIVERS = "notification_receivers"
    OFFER_RECEIVERS = "offer_receivers"
    CALL_PARTICIPANTS = "call_participants"


class MemberKind(StrEnum):
    USER = "user"
    DEPARTMENT = "department"
    TEAM = "team"


class PushKind(StrEnum):
    """Kinds of push targets: a browser subscription or a native app device token."""

    WEBPUSH = "webpush"
    FCM = "fcm"


class EventStatus(StrEnum):
    RECEIVED = "received"
    ROUTED = "routed"
    FAILED = "failed"


class TimeStepKind(StrEnum):
    """How a rule file shapes a channel step in time (docs/rules.md, "Time")."""

    DELAY = "delay"  # sent after a duration unless an event of a cancel_on type came first
    ESCALATE = "escalate"  # sent after a duration unless the feed item was read or acked


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED})


class OutcomeStatus(StrEnum):
    """What an adapter says about one delivery attempt."""

    SENT = "sent"
    RETRY = "retry"  # transient: try again later
    FAILED = "failed"  # permanent: retrying cannot help
    GONE = "gone"  # the address no longer exists: drop it, permanent
    AWAITING_ACK = "awaiting_ack"  # browser, first_success: published, waiting for an ack
    UNACKED = "unacked"  # browser: nobody acknowledged in the presence window


class BreakerState(StrEnum):
    """A channel's circuit breaker: closed sends, open holds, half-open lets one probe through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
class Reach(StrEnum):
    """Whether Herald may send to a URL (router.core.outbound)."""

    ALLOWED = "allowed"
    REFUSED = "refused"  # not public and not allow-listed: no retry helps
    UNRESOLVED = "unresolved"  # DNS gave no answer: may work later


class SubscriberOrigin(StrEnum):
    CODE_USER = "code_user"
    EMPLOYEE = "employee"


class FeedView(StrEnum):
    """Which items of a receiver's feed a page lists (issue #16)."""

    ALL = "all"  # everything not archived and not snoozed
    UNREAD = "unread"  # of those, the unread ones
    ARCHIVED = "archived"
    SNOOZED = "snoozed"  # waiting to wake


class Queue(StrEnum):
    ROUTE = "herald.route"
    ROUTE_BULK = "herald.route.bulk"  # a bursting tenant's events (fair lanes)
    BROWSER = "herald.browser"
    PUSH = "herald.push"
    EMAIL = "herald.email"
    CONTROL = "herald.control"


CHANNEL_QUEUES = {
    Channel.BROWSER: Queue.BROWSER,
    Channel.PUSH: Queue.PUSH,
    Channel.EMAIL: Queue.EMAIL,
}


class RulesChange(StrEnum):
    """How a rule set version came to be."""

    BOOTSTRAP = "bootstrap"  # the files at rules_path, first start on an empty table
    DEPLOY = "deploy"  # `herald rules deploy`
    ROLLBACK = "rollback"  # `herald rules rollback N`: N's content as a new version
    FILE_EDIT = "file_edit"  # embedded mode: an edit of the files, deployed automatically
