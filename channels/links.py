"""Content links for notifications: code users' links carry an access token (DESIGN §4)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from router.core.enums import ReceiverKind
from router.delivery import access
from router.delivery.contracts import Job


def content_link(s: Session, job: Job, days: int) -> tuple[str, datetime | None]:
    """The job's deep link and, for a code user, the expiry of the token added to it."""
    link = job.content.get("link", "")
    if job.receiver_kind != ReceiverKind.CODE_USER:
        return link, None
    subject = job.event.get("subject", {})
    created = datetime.fromisoformat(job.content["created_at"])
    token, expires = access.issue(s, job.tenant, subject.get("code_id"),
                                  (subject.get("kind", ""), subject.get("id", "")),
                                  job.receiver_id, created, days)
    joiner = "&" if "?" in link else "?"
    return f"{link}{joiner}access_token={token}", expires
