"""Access tokens for code users and one-click unsubscribe links (DESIGN §4, RFC 8058): only
their hashes are stored; an access token expires, dies with its code's "log out code users"
and never opens another tenant; "delete all notifications" is a cut-off for that code only;
an unsubscribe link turns off that one receiver's email and nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from router.core.errors import NotFound
from router.core.security import hash_secret
from router.delivery import access, unsubscribe
from router.store import models as m
from router.store.models import utcnow
from tests import factories as f


def issue(s, tenant: str, code: str | None = "QR-1", days: int = 14, created=None) -> str:
    token, _ = access.issue(s, tenant, code, ("ticket", "T-1"), "cu1", created or utcnow(), days)
    s.flush()
    return token


def test_only_the_hash_of_an_access_token_is_stored_and_it_opens_its_own_tenant_only(
        session, tenant):
    token = issue(session, tenant)
    [row] = session.scalars(select(m.AccessToken).where(m.AccessToken.tenant_id == tenant))
    assert row.token_hash == hash_secret(token) and token not in row.token_hash
    scope = access.verify(session, token, tenant=tenant).as_dict()
    assert scope["valid"] is True and scope["code_id"] == "QR-1"
    assert scope["subject"] == {"kind": "ticket", "id": "T-1"}
    assert access.verify(session, token, tenant=f.new_tenant(session).id).reason == "unknown"
    assert access.verify(session, token + "x").reason == "unknown"


def test_a_token_is_valid_until_its_period_from_the_notification_runs_out(session, tenant):
    created = utcnow() - timedelta(days=2)
    token = issue(session, tenant, days=3, created=created)
    expires = created + timedelta(days=3)
    assert access.verify(session, token, now=expires - timedelta(seconds=1)).valid
    assert access.verify(session, token, now=expires).reason == "expired"


def test_logging_out_a_codes_users_kills_its_tokens_only(session, tenant):
    mine, other = issue(session, tenant, "QR-1"), issue(session, tenant, "QR-2")
    assert access.revoke_code(session, tenant, "QR-1") == 1
    assert access.verify(session, mine).reason == "revoked"
    assert access.verify(session, other).valid
    later = issue(session, tenant, "QR-1", created=utcnow() + timedelta(seconds=1))
    assert access.verify(session, later).valid  # a notification after the log-out works


def test_deleting_a_codes_notifications_sets_a_cut_off_for_that_code_only(session, tenant):
    issue(session, tenant, "QR-1")
    assert access.cutoff(session, tenant, "QR-1") is None
    at = access.clear_notifications(session, tenant, "QR-1")
    assert access.cutoff(session, tenant, "QR-1") == at
    assert access.cutoff(session, tenant, "QR-2") is None and access.cutoff(session, tenant, None) is None
    with pytest.raises(NotFound):  # a code the tenant never mentioned
        access.revoke_code(session, tenant, "QR-unknown")
    with pytest.raises(NotFound):
        access.clear_notifications(session, tenant, "QR-unknown")


def test_an_unsubscribe_link_turns_off_that_receivers_email_and_nothing_else(session, tenant):
    f.employee(session, tenant, "ann")
    f.employee(session, tenant, "bob")
    f.settings(session, tenant, "ann", push=False, advanced={"all": {"channels": ["email"]}})
    token = unsubscribe.issue(session, tenant, "employee", "ann")
    assert session.get(m.UnsubscribeToken, hash_secret(token)) is not None
    assert not session.scalars(select(m.UnsubscribeToken).where(
        m.UnsubscribeToken.token_hash == token)).first()
    unsubscribe.use(session, token)
    unsubscribe.use(session, token)  # a second click is harmless
    ann = session.get(m.UserSettings, (tenant, "ann"))
    assert (ann.email, ann.push, ann.advanced["all"]["channels"]) == (False, False, ["email"])
    unsubscribe.use(session, unsubscribe.issue(session, tenant, "employee", "bob"))
    bob = session.get(m.UserSettings, (tenant, "bob"))  # he had set nothing: defaults but email
    assert (bob.email, bob.push, bob.customer_notifications, bob.advanced) == (False, True, True, {})


def test_a_code_users_unsubscribe_link_ends_that_sign_up_only(session, tenant):
    f.subscription(session, tenant, "cu1", "T-1", email="one@example.com")
    f.subscription(session, tenant, "cu2", "T-1", email="two@example.com")
    unsubscribe.use(session, unsubscribe.issue(session, tenant, "code_user", "cu1"))
    assert session.get(m.Subscription, (tenant, "cu1")).active is False
    assert session.get(m.Subscription, (tenant, "cu2")).active is True
    with pytest.raises(NotFound):
        unsubscribe.use(session, "hu_made-up")
