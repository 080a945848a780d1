"""The push channel against real protocol servers: a local Web Push service that
verifies VAPID and decrypts RFC 8291 payloads, and a local FCM HTTP v1 + OAuth2
token server. End-to-end cases run `herald serve` + `herald worker` on the real
PostgreSQL and Redis; targets are registered through the receiver-side API."""

from __future__ import annotations

import json
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import http_ece
import httpx
import pytest
import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from channels import fcm_client
from channels import push_payload as pp
from channels.push import PushAdapter, combine, load_vapid
from router.cli.commands import main as cli_main
from router.core.config import PushConfig, load_config
from router.core.enums import Channel, DeliveryStatus, OutcomeStatus
from router.core.errors import ConfigError, OutboundConfigError
from router.core.outbound import OutboundPolicy
from router.core.security import mint_user_token
from router.delivery.contracts import ChannelContext, Outcome
from router.delivery.deliveries import jobs_for
from router.delivery.live import Live
from router.store import models as m
from tests.conftest import ROOT, RULES
from tests.harness import Client, Herald
from tests.servers.fcm import FcmReply, FcmService
from tests.servers.webpush import PushService, ReceivedPush, Reply, vapid_keypair

DEFAULT_TTL = 3600
TICKET_LINK = "https://app.example.com/tickets/{id}"
LINKS = {"ticket": TICKET_LINK, "video_session": "https://app.example.com/video-sessions/{id}"}
UNTEMPLATED = "ticket.note_added"  # in the catalogue, without a text template: texts fall back
TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
LOCAL_ONLY = OutboundPolicy(["127.0.0.1"])  # the local push and FCM servers


def notice(body: str = "Someone wrote.", link: str = "https://app.example.com/tickets/T-1",
           title: str = "New ticket #1") -> pp.Notice:
    return pp.Notice(title=title, body=body, icon="ticket", link=link, id=7, tag="ticket:T-1",
                     type="ticket.created")


# ====================================================================== pure payload rules


def test_a_long_message_is_shortened_to_fit_4096_encrypted_bytes_and_the_link_is_kept():
    link = "https://app.example.com/tickets/T-1?access_token=hat_" + "x" * 43
    item = pp.fit(notice(body="Ünïcödé 🚒 " * 1000, link=link))
    payload = pp.web_payload(item)
    assert len(payload) <= pp.PLAINTEXT_LIMIT
    assert item.body.endswith("…") and item.body.startswith("Ünïcödé 🚒")
    assert json.loads(payload)["link"] == link
    receiver = ec.generate_private_key(ec.SECP256R1())
    auth = b"0123456789abcdef"
    encrypted = http_ece.encrypt(payload, private_key=ec.generate_private_key(ec.SECP256R1()),
                                 dh=receiver.public_key(), auth_secret=auth, version="aes128gcm")
    assert len(encrypted) <= pp.MAX_ENCRYPTED
    assert http_ece.decrypt(encrypted, private_key=receiver, auth_secret=auth,
                            version="aes128gcm") == payload


def test_a_payload_that_fits_is_left_alone_and_has_exactly_the_documented_keys():
    item = notice()
    assert pp.fit(item) == item
    assert set(json.loads(pp.web_payload(item))) == {"title", "body", "icon", "link", "id", "tag"}


def test_the_title_is_shortened_only_when_an_empty_body_is_not_enough():
    item = pp.fit(notice(body="b" * 5000, title="t" * 5000))
    assert item.body == "" and item.title.endswith("…")
    assert len(pp.web_payload(item)) <= pp.PLAINTEXT_LIMIT


def test_encryption_overhead_matches_the_documented_rule():
    payload = b"x" * pp.MAX_PLAINTEXT
    receiver = ec.generate_private_key(ec.SECP256R1())
    encrypted = http_ece.encrypt(payload, private_key=ec.generate_private_key(ec.SECP256R1()),
                                 dh=receiver.public_key(), auth_secret=b"a" * 16,
                                 version="aes128gcm")
    assert len(encrypted) == pp.MAX_ENCRYPTED


def test_the_topic_is_32_url_safe_characters_and_one_per_subject():
    first = pp.topic("t-1", "ticket", "T-1")
    assert TOPIC_RE.match(first)
    assert first == pp.topic("t-1", "ticket", "T-1")
    assert len({first, pp.topic("t-2", "ticket", "T-1"), pp.topic("t-1", "task", "T-1"),
                pp.topic("t-1", "ticket", "T-2")}) == 4


def test_the_ttl_counts_down_from_when_the_notification_was_made_and_runs_out():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    made = (now - timedelta(seconds=10)).isoformat()
    assert pp.remaining_ttl(60, made, now) == 50
    assert pp.remaining_ttl(60, (now - timedelta(seconds=61)).isoformat(), now) is None
    assert pp.remaining_ttl(0, made, now) == 0


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert pp.parse_retry_after("7") == 7.0
    assert pp.parse_retry_after("Tue, 01 Jan 2030 00:00:30 GMT", now) == 30.0
    assert pp.parse_retry_after("soon") is None and pp.parse_retry_after(None) is None


def test_fcm_message_carries_strings_only_and_the_urgency():
    how = pp.PushOptions(ttl=60, urgency="high", topic=pp.topic("t", "ticket", "T-1"))
    body = pp.fcm_message("tok", notice(), how)["message"]
    assert body["notification"] == {"title": "New ticket #1", "body": "Someone wrote."}
    assert body["data"] == {"link": "https://app.example.com/tickets/T-1", "id": "7",
                            "type": "ticket.created"}
    assert body["android"]["priority"] == "high" and body["android"]["ttl"] == "60s"
    assert body["apns"]["headers"]["apns-priority"] == "10"


def test_a_delivery_succeeds_when_any_target_accepted_and_gone_targets_are_still_dropped():
    gone = Outcome(OutcomeStatus.GONE, "410", gone=("https://push/a",))
    sent = combine([gone, Outcome.retry("503", 5), Outcome.sent("201", provider_ref="loc")])
    assert (sent.status, sent.provider_ref, sent.gone) == (OutcomeStatus.SENT, "loc",
                                                          ("https://push/a",))
    retry = combine([gone, Outcome.retry("429", 3), Outcome.retry("503", 9)])
    assert (retry.status, retry.retry_after, retry.gone) == (OutcomeStatus.RETRY, 9,
                                                            ("https://push/a",))
    assert combine([gone, gone]).status == OutcomeStatus.GONE
    assert combine([gone, Outcome.failed("413")]).status == OutcomeStatus.FAILED


# ====================================================================== configuration


def test_vapid_generate_prints_env_lines_with_a_matching_key_pair(capsys):
    assert cli_main(["vapid", "generate"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    assert set(lines) == {"HERALD_PUSH__VAPID_PRIVATE_KEY", "HERALD_PUSH__VAPID_PUBLIC_KEY"}
    cfg = PushConfig(vapid_private_key=lines["HERALD_PUSH__VAPID_PRIVATE_KEY"],
                     vapid_public_key=lines["HERALD_PUSH__VAPID_PUBLIC_KEY"])
    load_vapid(cfg)  # raises unless the pair belongs together
    assert len(cfg.vapid_public_key) == 87 and cfg.vapid_public_key.startswith("B")


def test_vapid_generate_write_updates_the_push_section_and_keeps_the_rest(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    shutil.copy(Path(ROOT) / "config.yaml", config)
    before = config.read_text()
    assert cli_main(["vapid", "generate", "--write", str(config)]) == 0
    after = config.read_text()
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert [line.split(":")[0].strip() for line in changed] == ["vapid_private_key",
                                                                "vapid_public_key"]
    written = yaml.safe_load(after)
    load_vapid(PushConfig(**written["push"]))
    assert {k: v for k, v in written.items() if k != "push"} == {
        k: v for k, v in yaml.safe_load(before).items() if k != "push"}
    capsys.readouterr()
    assert cli_main(["vapid", "generate", "--write", str(config)]) == 2
    assert "--force" in capsys.readouterr().err and config.read_text() == after


def test_mismatched_vapid_keys_are_refused_with_the_fix():
    private, _ = vapid_keypair()
    _, other_public = vapid_keypair()
    with pytest.raises(ConfigError, match="herald vapid generate"):
        load_vapid(PushConfig(vapid_private_key=private, vapid_public_key=other_public))


def test_the_fcm_key_may_come_inline_from_the_environment(monkeypatch, fcm):
    info = fcm.service_account_info("inline-project")
    monkeypatch.setenv("HERALD_FCM__SERVICE_ACCOUNT_JSON", json.dumps(info))
    client = fcm_client.load(load_config().fcm, LOCAL_ONLY)
    assert client is not None and client.project_id == "inline-project"
    monkeypatch.setenv("HERALD_FCM__SERVICE_ACCOUNT_JSON", '{"type": "authorized_user"}')
    with pytest.raises(ConfigError, match="service-account key"):
        fcm_client.load(load_config().fcm, LOCAL_ONLY)


def test_fcm_invalid_argument_about_the_message_keeps_the_token(fcm):
    client = fcm_client.load(load_config(fcm={"service_account_json": json.dumps(
        fcm.service_account_info()), "base_url": fcm.base_url}).fcm, LOCAL_ONLY)
    assert client is not None
    with requests.Session() as http:
        bad = client.send(http, {"message": {"token": "device-0001", "data": {"n": 1}}})
        fcm.script("device-0002", [FcmReply("INVALID_ARGUMENT")])
        bad_token = client.send(http, {"message": {"token": "device-0002"}})
    assert bad.status == OutcomeStatus.FAILED and bad.gone == ()
    assert bad_token.status == OutcomeStatus.GONE and bad_token.gone == ("device-0002",)


# ====================================================================== missing VAPID keys


def push_context(pg, ruleset, **push: str) -> ChannelContext:
    """What a push adapter needs, without a broker: config, the rules' event catalogue, database."""
    config = load_config(push={"vapid_private_key": "", "vapid_public_key": "", **push},
                         fcm={"service_account_file": "", "service_account_json": ""})
    return ChannelContext(config, Live(""), pg, ruleset.events.get)


def bare_runtime(pg, ruleset, **push: str) -> Any:
    """What the worker's deliver() needs, without a broker: config, database, the adapter."""
    adapter = PushAdapter(push_context(pg, ruleset, **push))
    return SimpleNamespace(
        config=adapter.config, db=pg, adapter=lambda _channel: adapter,
        workers=SimpleNamespace(enqueue_deliveries=lambda *a, **k: None,
                                enqueue_expiry=lambda *a, **k: None))


def test_without_vapid_keys_a_web_push_fails_once_and_for_good_naming_the_fix(pg, ruleset):
    from workers.actors import deliver

    runtime = bare_runtime(pg, ruleset)
    with pytest.raises(ConfigError, match="herald vapid generate"):
        runtime.adapter(Channel.PUSH).check()
    delivery_id = _planned_web_push(pg)
    deliver(runtime, Channel.PUSH, [delivery_id])
    with pg.session() as s:
        row = s.get(m.Delivery, delivery_id)
        assert row is not None
        assert (row.status, row.attempts, row.next_attempt_at) == (DeliveryStatus.FAILED, 1, None)
        assert "herald vapid generate" in (row.last_error or "")


def test_a_batch_that_runs_out_of_time_leaves_the_rest_for_a_retry(pg, ruleset):
    private, public = vapid_keypair()
    adapter = PushAdapter(push_context(pg, ruleset, vapid_private_key=private,
                                       vapid_public_key=public))
    adapter.time_budget_s = 0
    with pg.session() as s:
        jobs = jobs_for(s, [s.get(m.Delivery, _planned_web_push(pg))])
        adapter.prepare(s, jobs)
    [outcome] = adapter.send(jobs).values()
    assert outcome.status == OutcomeStatus.RETRY and "not attempted" in outcome.detail


HAND_MADE: list[str] = []  # tenants of rows written by hand, settled after each test


@pytest.fixture(autouse=True)
def _settle_hand_made_rows(pg) -> Iterator[None]:
    from tests import factories as f

    yield
    with pg.session() as s:
        while HAND_MADE:
            f.settle(s, HAND_MADE.pop())


def _planned_web_push(pg, sub: dict[str, Any] | None = None) -> int:
    """A pending push delivery to one browser subscription stored directly (no API check)."""
    from tests import factories as f

    with pg.session() as s:
        tenant = f.new_tenant(s).id
        HAND_MADE.append(tenant)
        f.employee(s, tenant, "u1")
        sub = sub or _fake_subscription()
        s.add(m.PushTarget(tenant_id=tenant, user_id="u1", kind="webpush",
                           endpoint=sub["endpoint"], **sub["keys"]))
        event = m.EventRow(tenant_id=tenant, event_id=uuid.uuid4().hex, type="ticket.created",
                           payload={"type": "ticket.created", "id": "e",
                                    "subject": {"kind": "ticket", "id": "T-1"}})
        s.add(event)
        s.flush()
        row = m.Delivery(tenant_id=tenant, event_pk=event.pk, receiver_kind="employee",
                         receiver_id="u1", channel="push", status=DeliveryStatus.PENDING,
                         strategy="all", content={"title": "T", "message": "M", "link": "",
                                                  "created_at": datetime.now(UTC).isoformat()})
        s.add(row)
        s.flush()
        return row.id


def _push_once(pg, adapter: PushAdapter, delivery_id: int) -> Outcome:
    with pg.session() as s:
        jobs = jobs_for(s, [s.get(m.Delivery, delivery_id)])
        adapter.prepare(s, jobs)
    [outcome] = adapter.send(jobs).values()
    return outcome


def test_a_stored_endpoint_outside_the_outbound_policy_fails_for_good_without_a_connection(
        pg, ruleset):
    private, public = vapid_keypair()
    with PushService(expected_vapid_public_key=public) as service:
        delivery_id = _planned_web_push(pg, service.new_subscription())  # http://127.0.0.1:port
        ctx = push_context(pg, ruleset, vapid_private_key=private, vapid_public_key=public)
        outcome = _push_once(pg, PushAdapter(ctx), delivery_id)
        assert outcome.status == OutcomeStatus.FAILED
        assert "not sent: must be an https URL (plain http only for hosts in outbound.allow)" \
            in outcome.detail
        assert service.attempts == []


def test_a_push_endpoint_whose_name_does_not_resolve_is_retried_later(pg, ruleset):
    def no_answer(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    private, public = vapid_keypair()
    adapter = PushAdapter(push_context(pg, ruleset, vapid_private_key=private,
                                       vapid_public_key=public))
    adapter.outbound = OutboundPolicy(resolve=no_answer)
    outcome = _push_once(pg, adapter, _planned_web_push(pg))  # https://push.invalid/...
    assert outcome.status == OutcomeStatus.RETRY
    assert "cannot resolve push.invalid: Temporary failure in name resolution" in outcome.detail


def test_an_fcm_url_outside_the_outbound_policy_is_refused_at_start_up_with_the_key(fcm):
    info = fcm.service_account_info()
    cfg = load_config(fcm={"service_account_json": json.dumps(info),
                           "base_url": fcm.base_url}).fcm
    with pytest.raises(OutboundConfigError, match=r"fcm.base_url http://127\.0\.0\.1:\d+ is "
                       r"refused: must be an https URL \(plain http only for hosts in "
                       r"outbound.allow\)"):
        fcm_client.load(cfg, OutboundPolicy())
    cfg.service_account_json = json.dumps({**info, "token_uri": "https://169.254.169.254/token"})
    with pytest.raises(OutboundConfigError, match="token_uri https://169.254.169.254/token is "
                       "refused: 169.254.169.254 is a link-local address; add it to "
                       "outbound.allow"):
        fcm_client.load(cfg, LOCAL_ONLY)


def _fake_subscription() -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    from tests.servers.webpush import public_key_b64url

    return {"endpoint": "https://push.invalid/push/abc",
            "keys": {"p256dh": public_key_b64url(key.public_key()),
                     "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}


# ====================================================================== end to end


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg, vapid, web_push, fcm) -> Iterator[Herald]:
    tmp = tmp_path_factory.mktemp("push")
    account = tmp / "fcm-service-account.json"
    account.write_text(json.dumps(fcm.service_account_info()))
    herald = Herald(tmp, rules_path=str(_rules_with_an_untemplated_event(tmp)), links=LINKS,
                    push={"vapid_private_key": vapid[0], "vapid_public_key": vapid[1],
                          "default_ttl_s": DEFAULT_TTL},
                    fcm={"service_account_file": str(account), "base_url": fcm.base_url})
    herald.start_api()
    herald.start_worker()
    yield herald
    herald.stop()


def _rules_with_an_untemplated_event(tmp: Path) -> Path:
    rules = tmp / "rules"
    rules.mkdir()
    for name in ("catalogue.yaml", "platform.yaml"):
        shutil.copy(Path(RULES) / name, rules / name)
    (rules / "extra.yaml").write_text(yaml.safe_dump({"events": {UNTEMPLATED: {
        "subject": "ticket", "title": "Note added"}}}))
    return rules


@dataclass
class Acme:
    """One fresh tenant on the deployment, with helpers that read as the test's steps."""

    id: str
    secret: str
    client: Client
    url: str
    web_push: PushService
    fcm: FcmService

    def user(self, uid: str) -> str:
        response = self.client.put(f"/v1/users/{uid}", json={"id": uid, "name": uid.title()})
        assert response.status_code == 204, response.text
        return uid

    def as_user(self, uid: str, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        token = mint_user_token(self.secret, self.id, uid, timedelta(hours=1))
        return httpx.request(method, f"{self.url}{path}", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})

    def browser(self, uid: str) -> dict[str, Any]:
        sub = self.web_push.new_subscription()
        response = self.as_user(uid, "POST", "/v1/me/push-subscriptions", sub)
        assert response.status_code == 201, response.text
        return sub

    def device(self, uid: str) -> str:
        token = f"fcm-{uuid.uuid4().hex}"
        response = self.as_user(uid, "POST", "/v1/me/devices", {"token": token})
        assert response.status_code == 201, response.text
        return token

    def publish(self, etype: str = "ticket.created", subject_id: str = "T-1",
                **fields: Any) -> dict[str, Any]:
        return self.client.wait_terminal(self.post(etype, subject_id, **fields))

    def post(self, etype: str = "ticket.created", subject_id: str = "T-1",
             **fields: Any) -> str:
        event = {"id": uuid.uuid4().hex, "type": etype,
                 "subject": {"kind": etype.split(".")[0], "id": subject_id,
                             "number": f"#{subject_id}", **fields.pop("subject", {})},
                 **fields}
        response = self.client.post("/v1/events", json=event)
        assert response.status_code == 202, response.text
        return str(event["id"])


def pushes(activity: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in activity["deliveries"] if d["channel"] == "push"]


def dropped_push(activity: dict[str, Any]) -> list[str]:
    return [d["reason"] for d in activity["dropped"] if d.get("channel") == "push"]


def targets(pg, tenant: str, uid: str) -> list[str]:
    with pg.session() as s:
        return list(s.scalars(select(m.PushTarget.kind).where(
            m.PushTarget.tenant_id == tenant, m.PushTarget.user_id == uid)))


def feed_item_id(pg, tenant: str, uid: str) -> int:
    with pg.session() as s:
        return s.scalars(select(m.FeedItem.id).where(
            m.FeedItem.tenant_id == tenant, m.FeedItem.receiver_id == uid)).one()


@pytest.fixture
def acme(deployment, new_tenant_key, web_push, fcm) -> Iterator[Acme]:
    web_push.clear()
    fcm.clear()
    tenant, key, secret = new_tenant_key()
    with Client(deployment.url, key) as client:
        yield Acme(tenant, secret, client, deployment.url, web_push, fcm)


@pytest.mark.slow
def test_a_direct_call_arrives_decrypted_with_title_link_and_high_urgency(acme, pg):
    acme.browser(acme.user("ann"))
    activity = acme.publish("video_session.direct_call", "V-1",
                            subject={"creator_id": "ann"},
                            actor={"id": "carla", "name": "Carla Caller"})
    [push] = acme.web_push.wait_for(1)
    body = push.json()
    assert body["title"] == "Incoming call from Carla Caller"
    assert body["body"] == "Carla Caller is calling you. Answer now to join video session #V-1."
    assert body["link"] == "https://app.example.com/video-sessions/V-1"
    assert (body["icon"], body["tag"]) == ("video_session", "video_session:V-1")
    assert body["id"] == feed_item_id(pg, acme.id, "ann")
    assert push.urgency == "high" and push.topic == pp.topic(acme.id, "video_session", "V-1")
    [browser] = [d for d in activity["deliveries"] if d["channel"] == "browser"]
    planned = datetime.fromisoformat(browser["history"][0]["at"]).timestamp()
    assert abs(push.ttl - (60 - (push.received_at - planned))) <= 1.5  # catalogue ttl 60, ticking
    [step] = pushes(activity)  # first_success: browser unacknowledged, then push
    assert step["status"] == "sent" and step["step"] == 1


@pytest.mark.slow
def test_an_ordinary_event_is_pushed_with_normal_urgency_and_the_default_ttl(acme):
    acme.browser(acme.user("bob"))
    activity = acme.publish(subject={"creator_id": "bob"}, data={"title": "Broken lift"})
    [push] = acme.web_push.wait_for(1)
    assert push.json()["title"] == "New ticket #T-1"
    assert push.urgency == "normal" and DEFAULT_TTL - 30 <= push.ttl <= DEFAULT_TTL
    assert [d["status"] for d in pushes(activity)] == ["sent"]


@pytest.mark.slow
def test_a_410_forgets_the_subscription_and_later_events_skip_push(acme, pg):
    sub = acme.browser(acme.user("cid"))
    acme.web_push.gone(sub["endpoint"])
    [step] = pushes(acme.publish(subject={"creator_id": "cid"}))
    assert step["status"] == "failed" and step["attempts"] == 1
    assert step["last_error"].startswith("gone:") and "410" in step["last_error"]
    assert targets(pg, acme.id, "cid") == []
    later = acme.publish("ticket.status_changed", subject={"creator_id": "cid"})
    assert pushes(later) == []
    assert dropped_push(later) == ["no browser subscription or app device registered"]


@pytest.mark.slow
def test_a_429_with_retry_after_is_retried_then_delivered(acme):
    sub = acme.browser(acme.user("dora"))
    acme.web_push.script(sub["endpoint"], [Reply(429, retry_after=1)])
    [step] = pushes(acme.publish(subject={"creator_id": "dora"}))
    assert (step["status"], step["attempts"]) == ("sent", 2)
    refused, accepted = acme.web_push.attempts
    assert (refused.status, accepted.status) == (429, 201)
    assert _gap(refused.push, accepted.push) >= 1.0  # Retry-After beat the 0.5 s backoff


def _gap(first: ReceivedPush | None, second: ReceivedPush | None) -> float:
    assert first is not None and second is not None
    return second.received_at - first.received_at


@pytest.mark.slow
def test_the_push_switch_stops_both_web_push_and_app_push(acme):
    acme.browser(acme.user("eve"))
    acme.device("eve")
    [step] = pushes(acme.publish(subject={"creator_id": "eve"}))
    assert step["status"] == "sent" and "accepted by 2 of 2" in step["history"][-1]["detail"]
    assert (len(acme.web_push.delivered), len(acme.fcm.delivered)) == (1, 1)
    response = acme.client.put("/v1/users/eve/settings", json={"push": False})
    assert response.status_code == 200, response.text
    later = acme.publish("ticket.status_changed", subject={"creator_id": "eve"})
    assert pushes(later) == [] and dropped_push(later) == ["the push switch is off"]
    assert (len(acme.web_push.delivered), len(acme.fcm.delivered)) == (1, 1)


@pytest.mark.slow
def test_a_code_user_gets_pushes_only_for_the_subject_they_signed_up_for(acme):
    sub = acme.web_push.new_subscription()
    response = acme.client.put("/v1/subscriptions/cu-1", json={
        "id": "cu-1", "subject_kind": "ticket", "subject_id": "T-CU", "code_id": "C-9",
        "push_subscription": sub, "channels": ["push"]})
    assert response.status_code == 204, response.text
    [step] = pushes(acme.publish(subject_id="T-CU", subject={"code_id": "C-9"}))
    assert step["receiver"] == {"kind": "code_user", "id": "cu-1"} and step["status"] == "sent"
    [push] = acme.web_push.wait_for(1)
    link = push.json()["link"]
    assert link.startswith("https://app.example.com/tickets/T-CU?access_token=hat_")
    scope = acme.client.post("/v1/access-tokens:verify",
                             json={"token": link.split("access_token=")[1]}).json()
    assert scope["valid"] and scope["subject"] == {"kind": "ticket", "id": "T-CU"}
    assert scope["subscription_id"] == "cu-1" and scope["code_id"] == "C-9"
    other = acme.publish(subject_id="T-OTHER", subject={"code_id": "C-9"})
    assert pushes(other) == [] and other["receivers"] == []
    assert len(acme.web_push.delivered) == 1


@pytest.mark.slow
def test_a_gone_code_user_subscription_is_cleared_from_the_sign_up(acme, pg):
    sub = acme.web_push.new_subscription()
    acme.client.put("/v1/subscriptions/cu-2", json={
        "id": "cu-2", "subject_kind": "ticket", "subject_id": "T-G",
        "push_subscription": sub, "channels": ["push"]})
    acme.web_push.gone(sub["endpoint"])
    [step] = pushes(acme.publish(subject_id="T-G"))
    assert step["status"] == "failed" and step["last_error"].startswith("gone:")
    with pg.session() as s:
        row = s.get(m.Subscription, (acme.id, "cu-2"))
        assert row is not None and row.push_subscription is None and row.channels == []


@pytest.mark.slow
def test_an_oversized_message_is_shortened_and_still_decrypts_with_the_link_intact(acme):
    acme.browser(acme.user("fay"))
    long_text = "The pump in basement B2 is leaking again. " * 250  # ~10 kB
    [step] = pushes(acme.publish(UNTEMPLATED, "T-9", subject={"creator_id": "fay"},
                                 data={"title": "Pump leak", "message": long_text}))
    assert step["status"] == "sent"
    [push] = acme.web_push.wait_for(1)
    body = push.json()
    assert len(push.payload) <= pp.PLAINTEXT_LIMIT
    assert body["body"].endswith("…") and long_text.startswith(body["body"][:-1])
    assert body["link"] == TICKET_LINK.format(id="T-9") and body["title"] == "Pump leak"


@pytest.mark.slow
def test_fcm_delivers_notification_and_data_link(acme, pg):
    token = acme.device(acme.user("gus"))
    [step] = pushes(acme.publish(subject={"creator_id": "gus"}))
    [message] = acme.fcm.wait_for(1)
    assert step["status"] == "sent" and step["provider_response"].startswith("projects/")
    assert message["token"] == token
    assert message["notification"] == {"title": "New ticket #T-1",
                                       "body": "Ticket #T-1 was opened."}
    assert message["data"] == {"link": TICKET_LINK.format(id="T-1"), "type": "ticket.created",
                               "id": str(feed_item_id(pg, acme.id, "gus"))}
    assert message["android"]["priority"] == "normal"


@pytest.mark.slow
def test_fcm_unregistered_removes_the_token_for_good(acme, pg):
    acme.fcm.unregister(acme.device(acme.user("hal")))
    [step] = pushes(acme.publish(subject={"creator_id": "hal"}))
    assert (step["status"], step["attempts"]) == ("failed", 1)
    assert "UNREGISTERED" in step["last_error"] and step["last_error"].startswith("gone:")
    assert targets(pg, acme.id, "hal") == []


@pytest.mark.slow
def test_fcm_unavailable_is_retried_then_delivered(acme):
    token = acme.device(acme.user("ida"))
    acme.fcm.script(token, [FcmReply("UNAVAILABLE", retry_after=1)])
    [step] = pushes(acme.publish(subject={"creator_id": "ida"}))
    assert (step["status"], step["attempts"]) == ("sent", 2)
    assert [a.error_code for a in acme.fcm.attempts] == ["UNAVAILABLE", None]


@pytest.mark.slow
def test_fcm_fetches_one_oauth_token_for_many_sends_and_refreshes_once_on_401(acme):
    for uid in ("jo", "kim", "lou"):
        acme.device(acme.user(uid))
    acme.fcm.revoke_tokens()  # the worker's cached token now gets 401: one refresh, then reuse
    sent = [acme.post(subject_id=f"T-{n}", subject={"creator_id": uid})  # concurrently
            for n, uid in enumerate(("jo", "kim", "lou", "jo"))]
    for event_id in sent:
        [step] = pushes(acme.client.wait_terminal(event_id))
        assert step["status"] == "sent" and step["attempts"] == 1
    assert len(acme.fcm.wait_for(4)) == 4
    assert acme.fcm.token_requests == 1


@pytest.mark.slow
def test_one_accepting_target_is_enough_when_another_is_gone(acme, pg):
    gone = acme.browser(acme.user("max"))
    acme.browser("max")
    acme.web_push.gone(gone["endpoint"])
    [step] = pushes(acme.publish(subject={"creator_id": "max"}))
    assert step["status"] == "sent" and "accepted by 1 of 2" in step["history"][-1]["detail"]
    assert targets(pg, acme.id, "max") == ["webpush"]

