"""Structured logging: JSON lines (default) or text, with fields passed as `extra`.

Fields bound in :data:`CONTEXT` (a worker's actor, queue and message id, set by
``workers.middleware``) are added to every record logged meanwhile."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
CONTEXT: ContextVar[dict[str, str] | None] = ContextVar("herald_log_context", default=None)


class _Context(logging.Filter):
    """Adds the bound context fields to a record (a field passed as `extra` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (CONTEXT.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _TextWithFields(logging.Formatter):
    """Plain text, with the structured fields (event id, tenant, ...) appended."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        text = super().format(record)
        return f"{text} {fields}" if fields else text


def setup(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level",
                                                          "name": "logger"}))
    else:
        handler.setFormatter(_TextWithFields("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    handler.addFilter(_Context())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("dramatiq", "alembic", "aiosmtpd", "mail.log"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
