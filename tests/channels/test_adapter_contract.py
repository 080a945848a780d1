"""The contract every channel adapter passes (issue #14, item 10).

Each case runs against every adapter (``tests/channels/rigs.py``): email over SMTP
(aiosmtpd), web push (a local RFC 8030/8291 push service), FCM HTTP v1 (a local FCM
and OAuth2 server) and the browser channel (Redis pub/sub). Adapters are built as the
worker builds them and driven prepare -> send -> after on jobs loaded with
``jobs_for`` from rows in PostgreSQL. Nothing is patched: misbehaviour comes from the
servers' scripts or from raw TCP peers (``tests/channels/peers.py``).

Not applicable by design (listed in NOT_APPLICABLE, shown as skips with the reason):
the browser channel publishes to Redis pub/sub, which has no rate-limit answer and no
per-receiver address a provider could declare gone, and its Redis is the shared one of
the machine, which a test may not stop; email does not model gone addresses (the
address belongs to the directory: a 550 "user unknown" is a permanent failure, case 5).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from router.core.enums import OutcomeStatus
from tests.channels import peers
from tests.channels.rigs import RIGS, EmailRig, FcmRig, Rig, WebPushRig

SENT, RETRY, FAILED = OutcomeStatus.SENT, OutcomeStatus.RETRY, OutcomeStatus.FAILED
NOT_APPLICABLE = {
    ("rate limit", "browser"): "Redis pub/sub has no rate-limit answer and no Retry-After",
    ("gone", "browser"): "a live message has no address a provider could declare gone",
    ("gone", "email"): "email does not model gone addresses: a 550 is a permanent failure",
    ("server stops", "browser"): "the browser channel's Redis is shared; a test must not stop it",
}


def contract(case: str) -> pytest.MarkDecorator:
    """Run the test once per adapter; a combination that cannot apply is a skip with why."""
    return pytest.mark.parametrize("rig", [
        pytest.param(name, marks=pytest.mark.skip(reason=f"not applicable: {why}"))
        if (why := NOT_APPLICABLE.get((case, name))) else name for name in RIGS], indirect=True)


@pytest.fixture
def rig(request, pg, ruleset, sink, web_push, vapid, fcm) -> Iterator[Rig]:
    kind = RIGS[request.param]
    made = (EmailRig(pg, ruleset, sink) if kind is EmailRig
            else WebPushRig(pg, ruleset, web_push, vapid) if kind is WebPushRig
            else FcmRig(pg, ruleset, fcm) if kind is FcmRig else kind(pg, ruleset))
    try:
        yield made
    finally:
        made.close()


def statuses(outcomes: dict) -> dict[int, OutcomeStatus]:
    return {job_id: outcome.status for job_id, outcome in outcomes.items()}


def sent_once(rig: Rig) -> None:
    """The adapter still delivers: a fresh job goes through."""
    target = rig.job()
    outcome = rig.send([target])[target.delivery_id]
    assert outcome.status == SENT, outcome.detail


# ====================================================================== 1. success


@contract("success")
def test_every_job_is_sent_once_with_the_providers_reference(rig):
    targets = [rig.job() for _ in range(3)]
    outcomes = rig.send(targets)
    assert statuses(outcomes) == {t.delivery_id: SENT for t in targets}
    if rig.provider_ref_given():
        refs = [o.provider_ref for o in outcomes.values()]
        assert all(refs) and len(set(refs)) == 3, refs
    assert all(o.gone == () and o.retry_after is None for o in outcomes.values())
    assert rig.accepted() == 3


# ====================================================================== 2. rate limits


@contract("rate limit")
def test_a_rate_limit_is_retried_when_the_server_says(rig):
    for answer in rig.rate_limits:
        target = rig.job()
        retry_after, reason = getattr(rig, answer)(target.address)
        outcome = rig.send([target])[target.delivery_id]
        assert (outcome.status, outcome.retry_after) == (RETRY, retry_after), (answer, outcome)
        assert reason in outcome.detail and outcome.gone == (), (answer, outcome)
    sent_once(rig)
    assert rig.accepted() == 1


# ====================================================================== 3. server errors


@contract("server error")
def test_a_server_error_is_retried(rig):
    for answer in rig.server_errors:
        rig.aim(None)
        target = rig.job()
        reason = getattr(rig, answer)(target.address)
        outcome = rig.send([target])[target.delivery_id]
        assert outcome.status == RETRY and reason in outcome.detail, (answer, outcome)
        assert outcome.gone == ()
    rig.aim(None)
    sent_once(rig)


# ====================================================================== 4. connection loss


def _aim_at_loss(rig: Rig, loss: str) -> None:
    if loss == "refused port":
        rig.aim(f"127.0.0.1:{peers.refused_port()}")
    elif loss == "hang-up on connect":
        rig.aim(rig.peer(peers.hang_up).origin)
    else:
        rig.aim(rig.peer(rig.mid_drop).origin)


@contract("connection loss")
@pytest.mark.parametrize("loss", ["refused port", "hang-up on connect", "drop mid-conversation"])
def test_a_lost_connection_is_retried_for_every_job_and_nothing_escapes(rig, loss):
    _aim_at_loss(rig, loss)
    targets = [rig.job() for _ in range(3)]
    outcomes = rig.send(targets)
    assert statuses(outcomes) == {t.delivery_id: RETRY for t in targets}
    assert all(o.detail for o in outcomes.values())


@contract("server stops")
def test_a_server_that_stops_between_batches_means_retries_then_sends_again(rig):
    sent_once(rig)  # a connection is now open (SMTP session, HTTP keep-alive)
    rig.stop_server()
    try:
        targets = [rig.job() for _ in range(2)]
        outcomes = rig.send(targets)
        assert statuses(outcomes) == {t.delivery_id: RETRY for t in targets}
    finally:
        rig.start_server()
    sent_once(rig)


# ====================================================================== 5. permanent failure


@contract("permanent failure")
def test_a_permanent_failure_fails_with_the_servers_reason(rig):
    for answer in rig.permanent_failures:
        rig.aim(None)
        target = rig.job()
        reason = getattr(rig, answer)(target.address)
        outcome = rig.send([target])[target.delivery_id]
        assert outcome.status == FAILED and reason in outcome.detail, (answer, outcome)
        assert outcome.gone == () and outcome.retry_after is None


# ====================================================================== 6. gone targets


@contract("gone")
def test_a_gone_target_is_reported_and_forgotten_while_others_stay(rig):
    for answer in rig.gone_answers:
        kept, gone = rig.job(), rig.job()
        getattr(rig, answer)(gone.address)
        outcomes = rig.send([kept, gone])
        assert outcomes[gone.delivery_id].gone == (gone.address,), (answer, outcomes)
        assert outcomes[gone.delivery_id].status != SENT
        assert outcomes[kept.delivery_id].status == SENT and outcomes[kept.delivery_id].gone == ()
        rig.after(outcomes)
        assert not rig.stored(gone.address), answer
        assert rig.stored(kept.address)


# ====================================================================== 7. vendor exceptions


@contract("misbehaving peer")
def test_a_misbehaving_peer_yields_an_outcome_per_job_and_no_exception(rig):
    for fault in rig.faults:
        rig.aim_at_fault(fault)
        targets = [rig.job() for _ in range(2)]
        outcomes = rig.send(targets)
        assert statuses(outcomes) == {t.delivery_id: fault.status for t in targets}, (
            fault.name, outcomes)
        assert all(o.detail for o in outcomes.values()), fault.name


# ====================================================================== 8. mixed batch


@contract("mixed batch")
def test_a_mixed_batch_gets_exactly_one_outcome_per_job(rig):
    retry, failed, gone = rig.mixed
    plan = [(None, SENT), (retry, RETRY), (failed, FAILED), (gone, OutcomeStatus.GONE),
            (None, SENT)]
    expected, targets = {}, []
    for answer, status in plan:
        if answer is None and status != SENT:
            continue  # this adapter has no per-address answer of that kind
        target = rig.job()
        if answer is not None:
            getattr(rig, answer)(target.address)
        targets.append(target)
        expected[target.delivery_id] = status
    outcomes = rig.send(targets)
    assert statuses(outcomes) == expected
    assert rig.accepted() == 2
