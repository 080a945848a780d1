"""The bytes the email adapter writes, sent through a real aiosmtpd server and parsed
back with the `email` package: encodings, escaping, headers, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import pytest

from channels.email import EmailAdapter
from router.core.config import load_config
from router.core.enums import Channel, OutcomeStatus
from router.delivery.contracts import ChannelContext, Job
from router.delivery.live import Live

FROM = "Hérald Bötchen <herald@mail.example>"


@pytest.fixture
def adapter(sink):
    sink.clear()
    config = load_config(smtp={"host": sink.host, "port": sink.port, "from_addr": FROM,
                               "reply_to": "Support Désk <help@mail.example>"})
    adapter = EmailAdapter(ChannelContext(config, Live("")))
    yield adapter
    adapter.close()


def job(tenant: str, i: int = 1, language: str = "en", title: str = "New ticket #7",
        name: str = "Sam", message: str = "Lift is stuck.", subject_id: str = "T-7") -> Job:
    return Job(id=i, tenant=tenant, channel=Channel.EMAIL, receiver_kind="employee",
               receiver_id=f"u{i}", strategy="all", attempts=1,
               content={"language": language, "title": title, "message": message,
                        "link": "https://app.example/tickets/T-7", "email": f"u{i}@acme.example",
                        "name": name, "created_at": datetime.now(UTC).isoformat()},
               event={"id": "e-1", "type": "ticket.created",
                      "subject": {"kind": "ticket", "id": subject_id, "number": "#7"},
                      "data": {"title": "Lift"}})


def deliver(adapter: EmailAdapter, pg, jobs: list[Job]) -> dict:
    with pg.session() as s:
        adapter.prepare(s, jobs)
    return adapter.send(jobs)


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def test_non_ascii_subject_sender_and_receiver_name_round_trip_through_smtp(adapter, sink, pg,
                                                                            tenant):
    title = "Neues Ticket #7 – Aufzug 3 steckt fest: bitte sofort prüfen, Grüße aus Köln"
    [outcome] = deliver(adapter, pg, [job(tenant, language="de", title=title,
                                          name="Zoë Ünal")]).values()
    assert outcome.status == OutcomeStatus.SENT
    [envelope] = sink.envelopes
    assert envelope.mail_from == "herald@mail.example" and envelope.rcpt_tos == ("u1@acme.example",)
    assert envelope.raw.isascii() and all(len(line) <= 78 for line in envelope.raw.split(b"\r\n")
                                          if not line.startswith(b"List-Unsubscribe:"))
    mail = parse(envelope.raw)
    assert mail["Subject"] == title
    assert mail["From"].addresses[0].display_name == "Hérald Bötchen"
    assert mail["Reply-To"].addresses[0].display_name == "Support Désk"
    assert mail["Content-Language"] == "de" and mail["Message-ID"] == outcome.provider_ref
    assert mail.get_content_type() == "multipart/alternative" and not mail.defects
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "Hallo Zoë Ünal" in text and "Zoë Ünal" in html and title in text


def test_receiver_name_and_event_data_are_escaped_in_the_html_part_only(adapter, sink, pg,
                                                                         tenant):
    deliver(adapter, pg, [job(tenant, name="<b>Bob & Co</b>", message="<i>x</i> & y")])
    mail = parse(sink.envelopes[0].raw)
    html = mail.get_body(preferencelist=("html",)).get_content()
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "&lt;b&gt;Bob &amp; Co&lt;/b&gt;" in html and "<b>Bob" not in html
    assert "&lt;i&gt;x&lt;/i&gt; &amp; y" in html and "<i>x</i>" not in html
    assert "Hello <b>Bob & Co</b>," in text and "<i>x</i> & y" in text


def test_unsubscribe_url_and_thread_ids_stay_verbatim_on_one_line(adapter, sink, pg, tenant):
    subject_id = "T-2026-0000000042-elevator-3-north-wing"  # the header is over 78 characters
    deliver(adapter, pg, [job(tenant, subject_id=subject_id)])
    headers = sink.envelopes[0].raw.split(b"\r\n\r\n")[0].decode().split("\r\n")
    [unsubscribe] = [h for h in headers if h.startswith("List-Unsubscribe:")]
    assert unsubscribe.startswith("List-Unsubscribe: <http://") and "=?" not in unsubscribe
    assert unsubscribe.endswith(">") and "/v1/unsubscribe/hu_" in unsubscribe
    [reply] = [h for h in headers if h.startswith("In-Reply-To:")]
    assert reply == f"In-Reply-To: <subject.{tenant}.ticket.{subject_id}@herald.localhost>"


def test_each_mail_gets_its_own_unsubscribe_token_and_message_id(adapter, sink, pg, tenant):
    outcomes = deliver(adapter, pg, [job(tenant, i) for i in range(1, 4)])
    mails = [parse(e.raw) for e in sink.envelopes]
    assert len({m["List-Unsubscribe"] for m in mails}) == 3
    assert {m["Message-ID"] for m in mails} == {o.provider_ref for o in outcomes.values()}
    assert [m["To"] for m in mails] == ["u1@acme.example", "u2@acme.example", "u3@acme.example"]


def test_a_refused_recipient_fails_and_a_451_retries_on_the_same_connection(adapter, sink, pg,
                                                                            tenant):
    sink.reject("u1@acme.example", 550, "5.1.1 mailbox unavailable")
    sink.fail_next(1, 451, "4.3.0 try later")
    try:
        outcomes = deliver(adapter, pg, [job(tenant, i) for i in range(1, 4)])
    finally:
        sink.accept_all()
    assert [o.status for o in outcomes.values()] == [
        OutcomeStatus.FAILED, OutcomeStatus.RETRY, OutcomeStatus.SENT]
    assert "550" in outcomes[1].detail and "451" in outcomes[2].detail
    assert [e.rcpt_tos for e in sink.envelopes] == [("u3@acme.example",)]


def digest_members(tenant: str, language: str, kind: str = "employee") -> list[Job]:
    """Three folded jobs of one receiver, as the worker merges them (delivery.digests)."""
    from types import SimpleNamespace

    from router.delivery import digests
    jobs = []
    for i, (text, when) in enumerate([("First <b>word</b>", "10:01"), ("Second", "10:02"),
                                      ("Third", "10:03")], start=1):
        one = job(tenant, i=i, language=language, title=f"Message {i} on ticket #42",
                  message=text)
        one.receiver_id, one.receiver_kind = "ann", kind  # type: ignore[assignment]
        one.content["email"] = "ann@acme.example"
        one.content["created_at"] = f"2026-12-07T{when}:00+00:00"
        one.content["link"] = f"https://app.example/tickets/T-42#m{i}"
        one.content["digest_title"] = ("{count} new messages on ticket #42" if language == "en"
                                       else "{count} neue Nachrichten zu Ticket #42")
        one.event = {**one.event, "type": "ticket.message_added", "id": f"e-{i}"}
        jobs.append(one)
    rows = [SimpleNamespace(id=j.id, digest_key="d|email|employee|ann|ticket:T-42#1")
            for j in jobs]
    [merged] = digests.merge(jobs, rows)
    return [merged]


@pytest.mark.parametrize(("language", "subject", "intro"), [
    ("en", "3 new messages on ticket #42", "Here is what happened (3 events):"),
    ("de", "3 neue Nachrichten zu Ticket #42", "Das ist passiert (3 Ereignisse):"),
])
def test_a_digest_is_one_mail_listing_its_events_in_the_receivers_language(
        adapter, sink, pg, tenant, language, subject, intro):
    [outcome] = deliver(adapter, pg, digest_members(tenant, language)).values()
    assert outcome.status == OutcomeStatus.SENT
    [mail] = sink.messages
    assert mail["Subject"] == subject
    assert mail["Content-Language"] == language
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert intro in text
    positions = [text.index(f"Message {i} on ticket #42") for i in (1, 2, 3)]
    assert positions == sorted(positions), "oldest first"
    assert "https://app.example/tickets/T-42#m2" in text
    assert 'href="https://app.example/tickets/T-42#m3"' in html
    assert "First &lt;b&gt;word&lt;/b&gt;" in html and "<b>word</b>" not in html
    assert "<herald.1." in mail["Message-ID"], "the group's first delivery names the mail"


def test_a_code_users_digest_links_only_through_its_access_link(adapter, sink, pg, tenant):
    deliver(adapter, pg, digest_members(tenant, "en", kind="code_user"))
    [mail] = sink.messages
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "#m2" not in text, "a code user's items carry no plain deep link"
