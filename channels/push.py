"""The push channel: web push (VAPID, RFC 8030/8291) and native app push (FCM
HTTP v1) behind one adapter and one switch (DESIGN §2).

Targets: an employee's or customer's ``PushTarget`` rows (browser subscriptions
and FCM device tokens); a code user's one browser subscription, kept on the
``Subscription`` of the subject they signed up for, used only for that subject.

One delivery, several targets: **sent** when any target accepted; else **retry**
when any target failed transiently (the longest Retry-After wins); else **gone**
when every target is gone; else **failed**. Gone targets are forgotten in
``after()`` whatever the delivery's outcome.

Web push answers: 2xx sent; 404/410 gone; 429, 5xx and connection errors retry
(Retry-After honoured); 400, 413 and the rest fail permanently, redirects too
(never followed). An endpoint outside the outbound policy (router.core.outbound) fails
permanently without a connection; one whose name does not resolve retries.
Web pushes are encrypted in the calling thread (pywebpush) and posted by one aiohttp
loop thread per process (``channels/web_push.py``); FCM messages go through requests on a
thread pool meanwhile. FCM answers: see ``channels/fcm_client.py``. Missing VAPID keys
fail web push deliveries permanently with the fix in the reason; ``check()`` raises the
same message.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import urllib.request
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar
from urllib.parse import urlparse

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid, VapidException
from pywebpush import WebPusher, WebPushException
from sqlalchemy.orm import Session

from channels import fcm_client, links
from channels import push_payload as pp
from channels.guarded_http import GuardedSession, OutboundRefused
from channels.web_push import Answer, NotAttempted, Request, Result, Unreachable, WebPushSender
from router.core.config import PushConfig
from router.core.enums import Channel, OutcomeStatus, PushKind, ReceiverKind
from router.core.errors import ChannelOff, ConfigError
from router.core.outbound import policy_for
from router.delivery import addresses
from router.delivery.contracts import Adapter, ChannelContext, Job, Outcome

log = logging.getLogger("herald.channels.push")

WEBPUSH = PushKind.WEBPUSH  # PushTarget.kind values
FCM = PushKind.FCM
NO_TARGETS = "no browser subscription or app device registered"
VAPID_FIX = ("run `herald vapid generate --write config.yaml` (or set the "
             "HERALD_PUSH__VAPID_PRIVATE_KEY / HERALD_PUSH__VAPID_PUBLIC_KEY lines it prints)")
FCM_OFF = f"native app push is not configured: {fcm_client.HOW_TO_FIX}"
MAX_DETAIL = 1000


Target = addresses.PushAddress
AES128GCM = "aes128gcm"  # RFC 8188, the content encoding RFC 8291 prescribes
NOT_ATTEMPTED = "not attempted: the batch ran out of time"


@dataclass
class Push:
    """One target's push: a web request or an FCM message to send, or its outcome already."""

    target: Target
    request: Request | None = None
    message: dict[str, Any] | None = None
    outcome: Outcome | None = None

    def result(self) -> Outcome:
        assert self.outcome is not None, "every push gets an outcome in send()"
        return self.outcome


def subscription_info(target: Target) -> dict[str, Any]:
    """A web push target as pywebpush takes it."""
    return {"endpoint": target.address, "keys": {"p256dh": target.p256dh, "auth": target.auth}}


# ------------------------------------------------------------------ VAPID keys


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_vapid_keys() -> tuple[str, str]:
    """A new pair: (base64url raw private scalar, base64url uncompressed public point)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return _b64url(private), _b64url(public)


def load_vapid(cfg: PushConfig) -> Vapid:
    """The signing key, checked against the public key browsers subscribe with."""
    if not cfg.vapid_private_key and not cfg.vapid_public_key:
        raise ChannelOff("web push is off: push.vapid_private_key and push.vapid_public_key "
                         f"are empty: {VAPID_FIX}")
    if not cfg.vapid_private_key or not cfg.vapid_public_key:
        raise ConfigError("web push needs VAPID keys, but push.vapid_private_key or "
                          f"push.vapid_public_key is empty: {VAPID_FIX}")
    try:
        key = Vapid.from_string(cfg.vapid_private_key)
        public = _b64url(key.public_key.public_bytes(Encoding.X962,
                                                     PublicFormat.UncompressedPoint))
    except (ValueError, TypeError, VapidException) as exc:
        raise ConfigError(f"push.vapid_private_key is not a VAPID private key ({exc}): "
                          f"{VAPID_FIX}") from None
    if public != cfg.vapid_public_key.rstrip("="):
        raise ConfigError("push.vapid_public_key does not belong to push.vapid_private_key, so "
                          "every push service would refuse the pushes: set both lines from one "
                          "`herald vapid generate` run (browsers then subscribe again)")
    if not cfg.vapid_subject.startswith(("mailto:", "https:")):
        raise ConfigError("push.vapid_subject must be a mailto: or https: URI "
                          "(push services contact you there)")
    return key


VAPID_LIFETIME_S = 12 * 3600  # the JWT's exp, as pywebpush sets it (services allow 24 h)
VAPID_RENEW_S = 3600  # sign again when less than this is left

# ------------------------------------------------------------------ the adapter


class PushAdapter(Adapter):
    channel: ClassVar[Channel] = Channel.PUSH
    batch_size: ClassVar[int] = 100
    time_budget_s: ClassVar[float] = 60.0  # jobs left after this retry later; see send()

    def __init__(self, ctx: ChannelContext) -> None:
        super().__init__(ctx)
        self.vapid: Vapid | None = None
        self.vapid_problem = ""
        self.vapid_error: ConfigError = ConfigError("")
        self.fcm: fcm_client.FcmClient | None = None
        self.fcm_problem = ""  # set only when FCM is configured but broken
        self.fcm_error: ConfigError | None = None
        self.outbound = policy_for(tuple(self.config.outbound.allow))
        self._executor: ThreadPoolExecutor | None = None
        self._sender: WebPushSender | None = None
        self._pool_lock = threading.Lock()
        self._local = threading.local()
        self._signed: dict[str, tuple[int, dict[str, str]]] = {}  # aud -> (exp, headers)
        try:
            self.vapid = load_vapid(self.config.push)
        except ConfigError as exc:
            self.vapid_problem, self.vapid_error = exc.message, exc
        try:
            self.fcm = fcm_client.load(self.config.fcm, self.outbound)
        except ConfigError as exc:
            self.fcm_problem, self.fcm_error = exc.message, exc

    def check(self) -> None:
        if self.fcm_error is not None:
            raise self.fcm_error
        if self.vapid_problem:
            raise self.vapid_error

    # ------------------------------------------------------------------ prepare (DB)

    def prepare(self, s: Session, jobs: list[Job]) -> None:
        users = [(j.tenant, j.receiver_id) for j in jobs
                 if j.receiver_kind != ReceiverKind.CODE_USER]
        targets = addresses.user_push_addresses(s, users)
        switched_off = addresses.push_switched_off(s, users)
        for job in jobs:
            key = (job.tenant, job.receiver_id)
            found: list[Target]
            if job.receiver_kind == ReceiverKind.CODE_USER:
                one, why = addresses.code_user_push_address(s, key, job.event.get("subject", {}))
                found = [one] if one is not None else []
            elif key in switched_off:
                found, why = [], "the push switch was turned off after this was planned"
            else:
                found, why = targets.get(key, []), NO_TARGETS
            job.extra["targets"], job.extra["why_none"] = found, why
            if found:
                link, _ = links.content_link(s, job, self.config.access_token_days)
                item = pp.notice(job.content, job.event, link, job.feed_item_id or job.id)
                job.extra["notice"] = pp.fit(item)

    # ------------------------------------------------------------------ send (I/O)

    def send(self, jobs: list[Job]) -> dict[int, Outcome]:
        """Push a batch: web pushes encrypted here, then posted on the sender's loop
        (``push.concurrency`` in flight); FCM messages on a thread pool meanwhile. A push is
        one HTTPS round trip to the push service (tens of ms to a real one)."""
        # stay well inside the claim's lease: the sweeper takes rows back once it ends
        budget = min(self.time_budget_s, self.config.delivery.lease_s / 2)
        deadline = time.monotonic() + budget
        planned = {job.id: self._pushes(job) for job in jobs}
        pushes = [p for ps in planned.values() if not isinstance(ps, Outcome) for p in ps]
        fcm = [p for p in pushes if p.message is not None]
        fcm_done = self._pool().map(partial(self._fcm_one, deadline), fcm) if fcm else iter(())
        web = [p for p in pushes if p.request is not None]
        if web:
            answers = self._web_sender().post_all([p.request for p in web if p.request], deadline)
            for push, answer in zip(web, answers, strict=True):
                push.outcome = web_outcome(push.target.address, answer)
        for push, outcome in zip(fcm, fcm_done, strict=True):
            push.outcome = outcome
        return {job_id: ps if isinstance(ps, Outcome) else combine([p.result() for p in ps])
                for job_id, ps in planned.items()}

    def _pushes(self, job: Job) -> Outcome | list[Push]:
        """The job's pushes, one per target, web pushes encrypted; an Outcome if none can go."""
        targets: list[Target] = job.extra.get("targets") or []
        if not targets:
            return Outcome.failed(job.extra.get("why_none") or NO_TARGETS)
        ttl, how = self._options(job)
        if how is None:
            return Outcome.failed(f"expired: the push may live {ttl} s and that time has passed")
        item: pp.Notice = job.extra["notice"]
        payload = pp.web_payload(item)
        return [self._web(t, payload, how) if t.kind == WEBPUSH else self._fcm(t, item, how)
                for t in targets]

    def _options(self, job: Job) -> tuple[int, pp.PushOptions | None]:
        """The event type's TTL (catalogue, else the default), and the options; None: expired."""
        spec = self.ctx.event_options(job.event.get("type", ""))
        ttl = spec.ttl_s if spec and spec.ttl_s is not None else self.config.push.default_ttl_s
        left = pp.remaining_ttl(ttl, job.content.get("created_at"))
        if left is None:
            return ttl, None
        subject = job.event.get("subject", {})
        return ttl, pp.PushOptions(left, spec.urgency if spec else pp.NORMAL,
                                   pp.topic(job.tenant, str(subject.get("kind", "")),
                                            str(subject.get("id", ""))))

    def _web(self, target: Target, payload: bytes, how: pp.PushOptions) -> Push:
        """A web push encrypted for its subscription (RFC 8291) and signed (VAPID)."""
        name = pp.label(WEBPUSH, target.address)
        if self.vapid is None:
            return Push(target, outcome=Outcome.failed(f"{name}: {self.vapid_problem}"))
        if len(payload) > pp.MAX_PLAINTEXT:
            return Push(target, outcome=Outcome.failed(
                f"{name}: {len(payload)} bytes even with the text shortened (the link alone is "
                "too long for a push)"))
        try:
            body = WebPusher(subscription_info(target)).encode(payload, AES128GCM)["body"]
            headers = {"TTL": str(how.ttl), "Content-Encoding": AES128GCM,
                       "Urgency": how.urgency, "Topic": how.topic,
                       **self._vapid_headers(target.address)}
        except WebPushException as exc:
            return Push(target, outcome=Outcome.failed(f"{name}: {exc.message}"))
        except (ValueError, VapidException) as exc:  # keys not on the curve, unsignable aud
            return Push(target, outcome=Outcome.failed(
                f"{name}: cannot encrypt or sign for this subscription: {exc}"))
        return Push(target, request=Request(target.address, body, headers))

    def _web_sender(self) -> WebPushSender:
        with self._pool_lock:
            if self._sender is None:
                self._sender = WebPushSender(self.outbound, self.config.push.concurrency,
                                             self.config.push.timeout_s)
                weakref.finalize(self, self._sender.close)
            return self._sender

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max(1, self.config.push.concurrency),
                                                    thread_name_prefix="herald-push")
            return self._executor

    def _session(self) -> requests.Session:
        """One HTTP session (keep-alive pool) per FCM sending thread; it connects only to
        addresses the outbound policy allows, checked at connect time (DNS can change)."""
        http: requests.Session | None = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = GuardedSession(self.outbound)
            # proxies from the environment once, not per request: with trust_env requests
            # re-read the environment and looked for ~/.netrc on every push (~10% of it)
            http.trust_env = False
            http.proxies.update(urllib.request.getproxies())
        return http

    def _vapid_headers(self, endpoint: str) -> dict[str, str]:
        """The VAPID Authorization header for a push service, signed once per service and
        reused until an hour before its 12 h expiry (signing per push was ~8% of a push)."""
        url = urlparse(endpoint)
        aud = f"{url.scheme}://{url.netloc}"
        now = int(time.time())
        with self._pool_lock:
            cached = self._signed.get(aud)
            if cached is not None and cached[0] - now > VAPID_RENEW_S:
                return cached[1]
        assert self.vapid is not None
        expires = now + VAPID_LIFETIME_S
        headers: dict[str, str] = self.vapid.sign(
            {"sub": self.config.push.vapid_subject, "aud": aud, "exp": expires})
        with self._pool_lock:
            self._signed[aud] = (expires, headers)
        return headers

    def _fcm(self, target: Target, item: pp.Notice, how: pp.PushOptions) -> Push:
        if self.fcm is None:
            name = pp.label(FCM, target.address)
            return Push(target, outcome=Outcome.failed(f"{name}: {self.fcm_problem or FCM_OFF}"))
        return Push(target, message=pp.fcm_message(target.address, item, how))

    def _fcm_one(self, deadline: float, push: Push) -> Outcome:
        assert self.fcm is not None and push.message is not None
        if time.monotonic() >= deadline:
            return Outcome.retry(NOT_ATTEMPTED)
        return self.fcm.send(self._session(), push.message)

    # ------------------------------------------------------------------ after (DB)

    def after(self, s: Session, jobs: list[Job], outcomes: dict[int, Outcome]) -> None:
        for job in jobs:
            outcome = outcomes.get(job.id)
            if outcome is None or not outcome.gone:
                continue
            forget = (addresses.forget_code_user_push
                      if job.receiver_kind == ReceiverKind.CODE_USER else addresses.forget_user_push)
            forget(s, (job.tenant, job.receiver_id), outcome.gone)
            log.info("push.targets_gone", extra={"tenant": job.tenant, "delivery_id": job.id,
                                                 "channel": str(Channel.PUSH),
                                                 "receiver": job.receiver_id,
                                                 "count": len(outcome.gone)})


# ------------------------------------------------------------------ helpers


def web_outcome(address: str, result: Result) -> Outcome:
    """Translate what became of one web push: the push service's answer, or why none came."""
    name = pp.label(WEBPUSH, address)
    if isinstance(result, OutboundRefused):
        return Outcome.failed(f"{name}: not sent: {result.reason}")
    if isinstance(result, NotAttempted):
        return Outcome.retry(NOT_ATTEMPTED)
    if isinstance(result, Unreachable):
        return Outcome.retry(f"{name}: cannot reach the push service: {result}")
    return web_answer(address, result)


def web_answer(address: str, answer: Answer) -> Outcome:
    """Translate a push service's answer for one subscription."""
    status = answer.status
    detail = f"{pp.label(WEBPUSH, address)}: {status} {answer.reason}".rstrip()
    if 200 <= status < 300:
        return Outcome.sent(detail, provider_ref=answer.headers.get("Location"))
    text = answer.text.strip()[:200]
    detail = f"{detail}: {text}" if text else detail
    if status in (404, 410):
        return Outcome(OutcomeStatus.GONE, detail, gone=(address,))
    if status == 429 or status >= 500:
        return Outcome.retry(detail, pp.parse_retry_after(answer.headers.get("Retry-After")))
    return Outcome.failed(detail)


def combine(results: list[Outcome]) -> Outcome:
    """One delivery's outcome from its targets' outcomes (see the module docstring)."""
    gone = tuple(address for r in results for address in r.gone)
    summary = "; ".join(r.detail for r in results)[:MAX_DETAIL]
    sent = [r for r in results if r.status == OutcomeStatus.SENT]
    if sent:
        return Outcome(OutcomeStatus.SENT, f"accepted by {len(sent)} of {len(results)}: "
                       f"{summary}"[:MAX_DETAIL], provider_ref=sent[0].provider_ref, gone=gone)
    waits = [r.retry_after or 0.0 for r in results if r.status == OutcomeStatus.RETRY]
    if waits:
        return Outcome(OutcomeStatus.RETRY, summary, retry_after=max(waits) or None, gone=gone)
    if results and all(r.status == OutcomeStatus.GONE for r in results):
        return Outcome(OutcomeStatus.GONE, summary, gone=gone)
    return Outcome(OutcomeStatus.FAILED, summary, gone=gone)

