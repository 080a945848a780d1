"""One rig per channel adapter for the contract suite: the real adapter, built the way
the worker builds it, aimed at a real local protocol server (or a misbehaving peer),
with jobs planned in PostgreSQL and loaded with ``jobs_for`` like the worker does.

A rig knows how to make its server answer each contract case (rate limit, server
error, permanent failure, gone target); the suite itself is adapter-agnostic.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import redis
from sqlalchemy import select

from channels.browser import BrowserAdapter
from channels.email import EmailAdapter
from channels.push import PushAdapter
from router.core.config import load_config
from router.core.enums import Channel, DeliveryStatus, OutcomeStatus
from router.delivery.contracts import Adapter, ChannelContext, Job, Outcome
from router.delivery.deliveries import jobs_for
from router.delivery.live import CHANNEL, Live
from router.store import models as m
from router.store.db import Database
from tests import factories as f
from tests.channels import peers
from tests.conftest import REDIS_URL
from tests.servers.fcm import FcmReply, FcmService
from tests.servers.smtp import SmtpSink
from tests.servers.webpush import PushService, Reply

EVENT = {"type": "ticket.created", "id": "e-contract",
         "subject": {"kind": "ticket", "id": "T-1", "number": "#1"},
         "data": {"title": "Lift", "message": "Broken"}}
Script = Callable[[str], Any]  # scripts the server's answer for one address


@dataclass(frozen=True)
class Target:
    delivery_id: int
    address: str  # email address, push endpoint, FCM token, or feed item id


@dataclass(frozen=True)
class Fault:
    """A peer answering something no correct server would, and the status it must yield."""

    name: str
    handler: peers.Handler
    status: OutcomeStatus
    tls: bool = False  # the adapter speaks TLS to a peer that does not
    token_endpoint: bool = False  # FCM: the peer stands in for the OAuth2 token endpoint


def planned(s: Any, tenant: str, channel: Channel, uid: str, content: dict[str, Any],
            feed_item_id: int | None = None) -> int:
    """A pending delivery as the router leaves it (event row + delivery row)."""
    event = m.EventRow(tenant_id=tenant, event_id=uuid.uuid4().hex, type=EVENT["type"],
                       payload=EVENT)
    s.add(event)
    s.flush()
    row = m.Delivery(tenant_id=tenant, event_pk=event.pk, receiver_kind="employee",
                     receiver_id=uid, channel=channel, status=DeliveryStatus.PENDING,
                     strategy="all", feed_item_id=feed_item_id,
                     content={"title": "Lift", "message": "Broken", "language": "en",
                              "link": "https://app.example.com/tickets/T-1",
                              "created_at": datetime.now(UTC).isoformat(), **content})
    s.add(row)
    s.flush()
    return row.id


class Rig:
    """The adapter under test plus the knobs of its server."""

    name: ClassVar[str]
    channel: ClassVar[Channel]

    def __init__(self, pg: Database, ruleset: Any) -> None:
        self.pg = pg
        self.ruleset = ruleset
        self.origin: str | None = None  # host:port of a peer instead of the real server
        self.tls = False
        self.jobs: list[Job] = []
        self._adapter: Adapter | None = None
        self._stack = ExitStack()
        self._users = 0
        with pg.session() as s:
            self.tenant = f.new_tenant(s).id

    # ------------------------------------------------------------ driving the adapter

    @property
    def adapter(self) -> Adapter:
        if self._adapter is None:
            self._adapter = self.build(self.runtime())
        return self._adapter

    def runtime(self) -> ChannelContext:
        return ChannelContext(load_config(**self.settings()), Live(""), self.pg,
                              self.ruleset.events.get)

    def build(self, runtime: Any) -> Adapter:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {"outbound": {"allow": ["127.0.0.1"]}}

    def aim(self, origin: str | None, tls: bool = False) -> None:
        """Send to ``origin`` (a peer) from now on; None: back to the real server."""
        self.close_adapter()
        self.origin, self.tls = origin, tls

    def aim_at_fault(self, fault: Fault) -> None:
        self.aim(self.peer(fault.handler).origin, fault.tls)

    def peer(self, handler: peers.Handler) -> peers.RawPeer:
        return self._stack.enter_context(peers.RawPeer(handler))

    def send(self, targets: list[Target]) -> dict[int, Outcome]:
        """prepare (DB session), then send (no session), as workers.actors.deliver does."""
        with self.pg.session() as s:
            self.jobs = jobs_for(s, [s.get(m.Delivery, t.delivery_id) for t in targets])
            self.adapter.prepare(s, self.jobs)
        return self.adapter.send(self.jobs)

    def after(self, outcomes: dict[int, Outcome]) -> None:
        with self.pg.session() as s:
            self.adapter.after(s, self.jobs, outcomes)

    def close_adapter(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None

    def close(self) -> None:
        """Also settles the rows this rig planned: the test session's schema is shared, and
        another deployment's worker would otherwise route the events and send the pending
        deliveries to peers long gone (opening that channel's breaker for later tests)."""
        self.close_adapter()
        self._stack.close()
        with self.pg.session() as s:
            f.settle(s, self.tenant)

    def new_user(self) -> str:
        self._users += 1
        return f"u{self._users}"

    # ------------------------------------------------------------ per channel

    def job(self) -> Target:
        raise NotImplementedError

    def accepted(self) -> int:
        """How many messages the real server took (for this rig's tenant where it can tell)."""
        raise NotImplementedError

    def provider_ref_given(self) -> bool:
        return True

    rate_limits: ClassVar[list[str]] = []  # names of rate_limit_* methods
    server_errors: ClassVar[list[str]] = []
    permanent_failures: ClassVar[list[str]] = []
    gone_answers: ClassVar[list[str]] = []
    faults: ClassVar[list[Fault]] = []
    mid_drop: ClassVar[peers.Handler]

    mixed: ClassVar[tuple[str | None, str | None, str | None]] = (None, None, None)
    """Per-address answers for a mixed batch: (retry, failed, gone) script names."""

    def stored(self, address: str) -> bool:
        raise NotImplementedError

    def stop_server(self) -> None:
        raise NotImplementedError

    def start_server(self) -> None:
        raise NotImplementedError


# ====================================================================== email


class EmailRig(Rig):
    name = "email"
    channel = Channel.EMAIL
    mid_drop = staticmethod(peers.smtp_drop_after_data)
    rate_limits = ["data_421", "data_451_rate", "rcpt_452"]
    server_errors = ["data_451", "rcpt_450", "data_454"]
    permanent_failures = ["rcpt_550", "rcpt_553", "data_554"]
    faults = [
        Fault("a greeting that is not SMTP", peers.not_smtp, OutcomeStatus.RETRY),
        Fault("an HTTP server on the SMTP port",
              lambda conn: conn.sendall(peers.http_response("200 OK", b"<html/>")),
              OutcomeStatus.RETRY),
        Fault("TLS to a server that speaks plain SMTP", peers.not_tls, OutcomeStatus.RETRY,
              tls=True),
    ]

    def __init__(self, pg: Database, ruleset: Any, sink: SmtpSink) -> None:
        super().__init__(pg, ruleset)
        self.sink = sink

    def settings(self) -> dict[str, Any]:
        port = int(self.origin.rsplit(":", 1)[1]) if self.origin else self.sink.port
        return {**super().settings(), "smtp": {
            "host": "127.0.0.1", "port": port, "timeout_s": 5,
            "security": "ssl" if self.tls else "none"}}

    def build(self, runtime: Any) -> Adapter:
        return EmailAdapter(runtime)

    def job(self) -> Target:
        uid = self.new_user()
        address = f"{uid}.{self.tenant}@contract.example"
        with self.pg.session() as s:
            f.employee(s, self.tenant, uid, email=address)
            return Target(planned(s, self.tenant, self.channel, uid,
                                  {"email": address, "name": uid}), address)

    def accepted(self) -> int:
        return sum(1 for e in self.sink.envelopes if any(self.tenant in r for r in e.rcpt_tos))

    def data_421(self, address: str) -> tuple[None, str]:
        self.sink.fail_next(1, 421, "4.7.0 too many connections, slow down")
        return None, "421 4.7.0 too many connections"

    def data_451_rate(self, address: str) -> tuple[None, str]:
        self.sink.fail_next(1, 451, "4.7.1 rate limit exceeded, try again later")
        return None, "451 4.7.1 rate limit exceeded"

    def rcpt_452(self, address: str) -> tuple[None, str]:
        self.sink.reject(address, 452, "4.5.3 too many recipients this hour")
        return None, "452 4.5.3 too many recipients"

    def data_451(self, address: str) -> str:
        self.sink.fail_next(1, 451, "4.3.0 local error in processing")
        return "451 4.3.0 local error"

    def rcpt_450(self, address: str) -> str:
        self.sink.reject(address, 450, "4.2.1 mailbox busy")
        return "450 4.2.1 mailbox busy"

    def data_454(self, address: str) -> str:
        self.sink.fail_next(1, 454, "4.7.0 temporary authentication failure")
        return "454 4.7.0 temporary"

    def rcpt_550(self, address: str) -> str:
        self.sink.reject(address, 550, "5.1.1 user unknown")
        return "550 5.1.1 user unknown"

    def rcpt_553(self, address: str) -> str:
        self.sink.reject(address, 553, "5.1.3 mailbox name not allowed")
        return "553 5.1.3 mailbox name not allowed"

    def data_554(self, address: str) -> str:
        self.sink.fail_next(1, 554, "5.7.1 message rejected as spam")
        return "554 5.7.1 message rejected as spam"

    mixed = ("rcpt_450", "rcpt_550", None)

    def stop_server(self) -> None:
        self.sink.stop()

    def start_server(self) -> None:
        self.sink.start()

    def close(self) -> None:
        self.sink.accept_all()
        super().close()


# ====================================================================== web push


# what any HTTP provider's peer may do wrong, whatever the protocol on top
HTTP_PEER_FAULTS = [
        Fault("an answer that is not HTTP", peers.http_answer(b"SSH-2.0-OpenSSH_9.6\r\n"),
              OutcomeStatus.RETRY),
        Fault("a proxy's 502 HTML page",
              peers.http_answer(peers.http_response("502 Bad Gateway", b"<html>nginx</html>")),
              OutcomeStatus.RETRY),
]


class WebPushRig(Rig):
    name = "webpush"
    channel = Channel.PUSH
    mid_drop = staticmethod(peers.http_drop)
    rate_limits = ["status_429"]
    server_errors = ["status_500", "status_502", "status_503"]
    permanent_failures = ["status_400", "status_403", "status_413"]
    gone_answers = ["status_404", "status_410"]
    faults = [
        *HTTP_PEER_FAULTS,
        Fault("a 201 with a body and no Location",
              peers.http_answer(peers.http_response("201 Created", b"\x00\xff{not json")),
              OutcomeStatus.SENT),
        Fault("a redirect (never followed)",
              peers.http_answer(b"HTTP/1.1 301 Moved\r\nLocation: http://169.254.169.254/\r\n"
                                b"Content-Length: 0\r\n\r\n"), OutcomeStatus.FAILED),
        Fault("TLS to a server that speaks plain HTTP", peers.not_tls, OutcomeStatus.RETRY,
              tls=True),
    ]

    def __init__(self, pg: Database, ruleset: Any, service: PushService,
                 vapid: tuple[str, str]) -> None:
        super().__init__(pg, ruleset)
        self.service = service
        self.vapid = vapid
        self.mine: set[str] = set()

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "push": {"vapid_private_key": self.vapid[0],
                                               "vapid_public_key": self.vapid[1]},
                "fcm": {"service_account_file": "", "service_account_json": ""}}

    def build(self, runtime: Any) -> Adapter:
        return PushAdapter(runtime)

    def job(self) -> Target:
        sub = self.service.new_subscription()
        if self.origin:  # real keys, a peer's address
            scheme = "https" if self.tls else "http"
            sub["endpoint"] = f"{scheme}://{self.origin}/push/{uuid.uuid4().hex}"
        self.mine.add(sub["endpoint"])
        uid = self.new_user()
        with self.pg.session() as s:
            f.employee(s, self.tenant, uid)
            s.add(m.PushTarget(tenant_id=self.tenant, user_id=uid, kind="webpush",
                               endpoint=sub["endpoint"], **sub["keys"]))
            return Target(planned(s, self.tenant, self.channel, uid, {}), sub["endpoint"])

    def accepted(self) -> int:
        return sum(1 for p in self.service.delivered if p.endpoint in self.mine)

    def stored(self, address: str) -> bool:
        with self.pg.session() as s:
            return s.scalars(select(m.PushTarget.id).where(
                m.PushTarget.tenant_id == self.tenant, m.PushTarget.endpoint == address)
            ).first() is not None

    def _script(self, address: str, status: int, retry_after: int | None = None) -> None:
        self.service.script(address, [Reply(status, retry_after, body=f"scripted {status}")])

    def status_429(self, address: str) -> tuple[float, str]:
        self._script(address, 429, retry_after=7)
        return 7.0, "429 Too Many Requests"

    def status_500(self, address: str) -> str:
        self._script(address, 500)
        return "500 Internal Server Error"

    def status_502(self, address: str) -> str:
        self._script(address, 502)
        return "502 Bad Gateway"

    def status_503(self, address: str) -> str:
        self._script(address, 503, retry_after=3)
        return "503 Service Unavailable"

    def status_400(self, address: str) -> str:
        self._script(address, 400)
        return "400 Bad Request: scripted 400"

    def status_403(self, address: str) -> str:
        self._script(address, 403)
        return "403 Forbidden: scripted 403"

    def status_413(self, address: str) -> str:
        self._script(address, 413)
        return "413 Request Entity Too Large: scripted 413"

    def status_404(self, address: str) -> None:
        self._script(address, 404)

    def status_410(self, address: str) -> None:
        self.service.gone(address)

    mixed = ("status_503", "status_400", "status_410")

    def stop_server(self) -> None:
        self.service.stop()

    def start_server(self) -> None:
        self.service.start()


# ====================================================================== FCM


FCM_FIELD_VIOLATION = json.dumps({"error": {
    "code": 400, "status": "INVALID_ARGUMENT", "message": "Invalid value at 'message.android.ttl'",
    "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                 "errorCode": "INVALID_ARGUMENT"},
                {"@type": "type.googleapis.com/google.rpc.BadRequest",
                 "fieldViolations": [{"field": "message.android.ttl",
                                      "description": "Invalid duration"}]}]}}).encode()


class FcmRig(Rig):
    name = "fcm"
    channel = Channel.PUSH
    mid_drop = staticmethod(peers.http_drop)
    rate_limits = ["quota_exceeded"]
    server_errors = ["unavailable", "internal", "unspecified"]
    permanent_failures = ["sender_id_mismatch", "third_party_auth", "invalid_message"]
    gone_answers = ["unregistered", "invalid_token"]
    faults = [
        *HTTP_PEER_FAULTS,
        Fault("a 400 whose body is not JSON",
              peers.http_answer(peers.http_response("400 Bad Request", b"<html>no</html>")),
              OutcomeStatus.FAILED),
        Fault("a 200 whose body is not JSON",
              peers.http_answer(peers.http_response("200 OK", b"{truncated", "application/json")),
              OutcomeStatus.SENT),
        Fault("TLS to a server that speaks plain HTTP", peers.not_tls, OutcomeStatus.RETRY,
              tls=True),
        Fault("a token endpoint answering 200 with a body that is not JSON",
              peers.http_answer(peers.http_response("200 OK", b"<html>portal</html>")),
              OutcomeStatus.RETRY, token_endpoint=True),
        Fault("a token endpoint answering 200 without an access token",
              peers.http_answer(peers.http_response("200 OK", b'{"token_type": "Bearer"}',
                                                    "application/json")),
              OutcomeStatus.FAILED, token_endpoint=True),
    ]

    def __init__(self, pg: Database, ruleset: Any, service: FcmService) -> None:
        super().__init__(pg, ruleset)
        self.service = service
        self.token_uri = service.token_uri
        self.info = service.service_account_info()  # one RSA key per rig
        self.mine: set[str] = set()

    def settings(self) -> dict[str, Any]:
        info = {**self.info, "token_uri": self.token_uri}
        base = f"{'https' if self.tls else 'http'}://{self.origin}" if self.origin \
            else self.service.base_url
        return {**super().settings(),
                "push": {"vapid_private_key": "", "vapid_public_key": ""},
                "fcm": {"service_account_json": json.dumps(info), "base_url": base,
                        "timeout_s": 5}}

    def build(self, runtime: Any) -> Adapter:
        return PushAdapter(runtime)

    def job(self) -> Target:
        token = f"fcm-{uuid.uuid4().hex}"
        self.mine.add(token)
        uid = self.new_user()
        with self.pg.session() as s:
            f.employee(s, self.tenant, uid)
            s.add(m.PushTarget(tenant_id=self.tenant, user_id=uid, kind="fcm", endpoint=token))
            return Target(planned(s, self.tenant, self.channel, uid, {}), token)

    def accepted(self) -> int:
        return sum(1 for msg in self.service.delivered if msg["token"] in self.mine)

    stored = WebPushRig.stored

    def _script(self, address: str, code: str, retry_after: int | None = None) -> None:
        self.service.script(address, [FcmReply(code, retry_after)])

    def quota_exceeded(self, address: str) -> tuple[float, str]:
        self._script(address, "QUOTA_EXCEEDED", retry_after=9)
        return 9.0, "429 QUOTA_EXCEEDED"

    def unavailable(self, address: str) -> str:
        self._script(address, "UNAVAILABLE")
        return "503 UNAVAILABLE"

    def internal(self, address: str) -> str:
        self._script(address, "INTERNAL")
        return "500 INTERNAL"

    def unspecified(self, address: str) -> str:
        self._script(address, "UNSPECIFIED_ERROR")
        return "500 UNSPECIFIED_ERROR"

    def sender_id_mismatch(self, address: str) -> str:
        self._script(address, "SENDER_ID_MISMATCH")
        return "403 SENDER_ID_MISMATCH: SenderId mismatch"

    def third_party_auth(self, address: str) -> str:
        self._script(address, "THIRD_PARTY_AUTH_ERROR")
        return "401 THIRD_PARTY_AUTH_ERROR"

    def invalid_message(self, address: str) -> str:
        """INVALID_ARGUMENT about a message field (the local server only knows the token
        kind), so a peer answers it exactly as FCM does."""
        response = peers.http_response("400 Bad Request", FCM_FIELD_VIOLATION, "application/json")
        self.aim(self.peer(peers.http_answer(response)).origin)
        return "400 INVALID_ARGUMENT: Invalid value at 'message.android.ttl'"

    def unregistered(self, address: str) -> None:
        self.service.unregister(address)

    def invalid_token(self, address: str) -> None:
        self._script(address, "INVALID_ARGUMENT")

    mixed = ("unavailable", "sender_id_mismatch", "unregistered")
    stop_server = WebPushRig.stop_server
    start_server = WebPushRig.start_server

    def aim(self, origin: str | None, tls: bool = False) -> None:
        super().aim(origin, tls)
        self.token_uri = self.service.token_uri

    def aim_at_fault(self, fault: Fault) -> None:
        if not fault.token_endpoint:
            return super().aim_at_fault(fault)
        self.aim(None)
        self.token_uri = f"http://{self.peer(fault.handler).origin}/token"


# ====================================================================== browser


class BrowserRig(Rig):
    name = "browser"
    channel = Channel.BROWSER
    mid_drop = staticmethod(peers.resp_drop)
    server_errors = ["misconf"]
    permanent_failures = ["item_deleted"]
    faults = [
        Fault("a reply that is not RESP", peers.resp_answer(b"HTTP/1.1 400 Bad Request\r\n"),
              OutcomeStatus.RETRY),
        Fault("TLS to a server that speaks plain RESP", peers.not_tls, OutcomeStatus.RETRY,
              tls=True),
    ]

    def runtime(self) -> ChannelContext:
        scheme = "rediss" if self.tls else "redis"
        live = Live(f"{scheme}://{self.origin}/0" if self.origin else REDIS_URL)
        self._stack.callback(live.close)
        return dataclasses.replace(super().runtime(), live=live)

    def build(self, runtime: Any) -> Adapter:
        return BrowserAdapter(runtime)

    def job(self) -> Target:
        uid = self.new_user()
        with self.pg.session() as s:
            event = m.EventRow(tenant_id=self.tenant, event_id=uuid.uuid4().hex,
                               type=EVENT["type"], payload=EVENT)
            s.add(event)
            s.flush()
            item = m.FeedItem(tenant_id=self.tenant, receiver_kind="employee", receiver_id=uid,
                              seq=1, event_type=EVENT["type"], subject_kind="ticket",
                              subject_id="T-1", title="Lift", last_event_pk=event.pk)
            s.add(item)
            s.flush()
            return Target(planned(s, self.tenant, self.channel, uid, {}, item.id), str(item.id))

    def listen(self) -> redis.client.PubSub:
        """Subscribe to the live channel, as every API replica does."""
        client = redis.Redis.from_url(REDIS_URL)
        pubsub = client.pubsub()
        pubsub.subscribe(CHANNEL)
        self._stack.callback(client.close)
        self._stack.callback(pubsub.close)
        return pubsub

    mixed = (None, "item_deleted", None)

    def __init__(self, pg: Database, ruleset: Any) -> None:
        super().__init__(pg, ruleset)
        self.pubsub = self.listen()
        self.published = 0

    def accepted(self) -> int:
        """Live entries for this tenant that reached the channel every replica listens on."""
        while (message := self.pubsub.get_message(timeout=0.3)) is not None:
            if message["type"] == "message":
                self.published += sum(1 for e in json.loads(message["data"])
                                  if e.get("tenant") == self.tenant)
        return self.published

    def provider_ref_given(self) -> bool:
        return False  # pub/sub has no message id

    def misconf(self, address: str) -> str:
        reply = (b"-MISCONF Redis is configured to save RDB snapshots, but it is "
                 b"currently not able to persist on disk\r\n")
        self.aim(self.peer(peers.resp_answer(reply)).origin)
        return "MISCONF"

    def item_deleted(self, address: str) -> str:
        with self.pg.session() as s:
            s.execute(m.FeedItem.__table__.delete().where(m.FeedItem.id == int(address)))
        return "the feed item no longer exists"


RIGS: dict[str, type[Rig]] = {r.name: r for r in (EmailRig, WebPushRig, FcmRig, BrowserRig)}
