"""The email channel: SMTP with one connection per batch.

Outcomes: 2xx -> sent (the server's reply kept); 5xx -> permanent failure (the
bounce reason kept); 421/450/451/452, connection errors and timeouts -> retry
with backoff. smtplib exceptions never leave this module.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from typing import ClassVar

from sqlalchemy.orm import Session

from channels import links
from channels.mail_content import Mail, MailRenderer, MailSettings
from router.core.enums import Channel
from router.core.errors import ChannelOff
from router.delivery import addresses, unsubscribe
from router.delivery.contracts import Adapter, ChannelContext, Job, Outcome

TRANSIENT_CODES = {421, 450, 451, 452}


class EmailAdapter(Adapter):
    channel: ClassVar[Channel] = Channel.EMAIL
    batch_size: ClassVar[int] = 100
    record_every: ClassVar[int] = 10  # a worker killed mid-batch re-sends at most this many

    def __init__(self, ctx: ChannelContext) -> None:
        super().__init__(ctx)
        self.renderer = MailRenderer()
        self._local = threading.local()  # one SMTP connection per worker thread
        smtp = self.config.smtp
        self.mail = MailSettings(smtp.from_addr, smtp.reply_to, smtp.message_id_domain)

    def check(self) -> None:
        if not self.config.smtp.host:
            raise ChannelOff("email is off: smtp.host is empty: set HERALD_SMTP__HOST "
                             "(or smtp.host in config.yaml) to your relay")

    # ------------------------------------------------------------------ prepare (DB)

    def prepare(self, s: Session, jobs: list[Job]) -> None:
        names = addresses.tenant_names(s, {j.tenant for j in jobs})
        tokens = unsubscribe.issue_many(s, [(j.tenant, j.receiver_kind, j.receiver_id)
                                            for j in jobs])
        base = f"{self.config.public_url.rstrip('/')}/v1/unsubscribe/"
        rendered: dict[str, tuple[str, str]] = {}  # bodies by group: one render per event
        for job, token in zip(jobs, tokens, strict=True):
            link, expires = links.content_link(s, job, self.config.access_token_days)
            url = base + token
            ctx = self.renderer.context(job, link, expires, url, names.get(job.tenant, ""))
            job.extra["message"] = self.renderer.build(job, ctx, self.mail, rendered)

    # ------------------------------------------------------------------ send (I/O)

    def send(self, jobs: list[Job]) -> dict[int, Outcome]:
        """Send on this thread's connection, opened once and reused across chunks of a
        batch (the worker records outcomes every few mails; ``close`` ends it)."""
        outcomes: dict[int, Outcome] = {}
        try:
            conn = self._connection()
        except (OSError, smtplib.SMTPException) as exc:
            return {j.id: Outcome.retry(f"SMTP connection failed: {exc}") for j in jobs}
        for job in jobs:
            outcomes[job.id] = self._send_one(conn, job.extra["message"])
            if outcomes[job.id].detail.startswith("connection lost"):
                self.close()
                break
        for job in jobs:
            outcomes.setdefault(job.id, Outcome.retry("not attempted: connection lost earlier"))
        return outcomes

    def _connection(self) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = getattr(self._local, "conn", None)
        if conn is None or conn.sock is None:  # smtplib closes it itself after a 421
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            _quit(conn)

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config.smtp
        if cfg.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s,
                                                  local_hostname="localhost",
                                                  context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s,
                                local_hostname="localhost")
            if cfg.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
        if cfg.username:
            conn.login(cfg.username, cfg.password)
        return conn

    def _send_one(self, conn: smtplib.SMTP, mail: Mail) -> Outcome:
        try:
            options = _options(conn, mail)
            if options is None:
                return Outcome.failed("the SMTP server does not offer SMTPUTF8, which a "
                                      "non-ASCII address needs")
            refused = conn.sendmail(mail.sender, list(mail.recipients), mail.data, options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            return _by_code(code, reply)
        except smtplib.SMTPResponseException as exc:
            return _by_code(exc.smtp_code, exc.smtp_error)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            return Outcome.retry(f"connection lost: {exc}")
        if refused:
            code, reply = next(iter(refused.values()))
            return _by_code(code, reply)
        return Outcome.sent("250 accepted", provider_ref=mail.message_id)


def _options(conn: smtplib.SMTP, mail: Mail) -> tuple[str, ...] | None:
    """MAIL FROM options: SMTPUTF8 for a non-ASCII address (None: not offered)."""
    if not mail.international:
        return ()
    conn.ehlo_or_helo_if_needed()
    return ("SMTPUTF8", "BODY=8BITMIME") if conn.has_extn("smtputf8") else None


def _by_code(code: int, reply: bytes | str) -> Outcome:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    detail = f"{code} {text}"
    if 200 <= code < 300:
        return Outcome.sent(detail)
    if code in TRANSIENT_CODES or 400 <= code < 500:
        return Outcome.retry(detail)
    return Outcome.failed(detail)


def _quit(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()
