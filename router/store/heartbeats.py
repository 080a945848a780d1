"""Worker heartbeats: each worker process beats every few seconds; a worker silent for
``delivery.dead_after_s`` is dead. The first live worker to delete a dead worker's row
releases its claims, so that happens exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, update
from sqlalchemy.orm import Session

from router.store import models as m
from router.store.models import utcnow

H = cast(Table, m.WorkerHeartbeat.__table__)


def _now(s: Session) -> Any:
    """The database's clock on PostgreSQL, so workers on hosts whose clocks differ agree
    on who is silent; embedded SQLite is one process with one clock."""
    return func.now() if s.get_bind().dialect.name == "postgresql" else utcnow()


def beat(s: Session, worker: str) -> bool:
    """Record that ``worker`` is alive; False when it had no row (first beat, or it was
    taken for dead and its claims were released)."""
    now = _now(s)
    beaten = s.execute(update(H).where(H.c.worker_id == worker).values(beat_at=now))
    if getattr(beaten, "rowcount", 0):
        return True
    s.execute(H.insert().values(worker_id=worker, started_at=now, beat_at=now))
    return False


def take_dead(s: Session, dead_after_s: float) -> list[str]:
    """Remove the rows of workers silent for ``dead_after_s``; returns the ones this call
    removed (another process's concurrent call gets the others, or none)."""
    cutoff = _now(s) - timedelta(seconds=dead_after_s)
    return list(s.scalars(delete(H).where(H.c.beat_at < cutoff).returning(H.c.worker_id)))


def leave(s: Session, worker: str) -> None:
    """A clean stop: the worker finishes its own claims, nobody releases them."""
    s.execute(delete(H).where(H.c.worker_id == worker))
