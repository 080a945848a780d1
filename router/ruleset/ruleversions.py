"""Rule set versions in the database (DESIGN §9): every deployed set with its files'
text, so every process compiles the same rules whatever its own disk holds.

Versions only grow, and the highest one is the set in force: a deploy inserts it,
which makes it active in the same transaction; a rollback stores an older version's
content as a new version. Deploying the content already in force stores nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from router.core.enums import RulesChange
from router.core.errors import NotFound
from router.ruleset.rulefile import RuleSet, parse_ruleset, read_rule_files
from router.store import models as m
from router.store.db import Database


@dataclass(frozen=True)
class RuleSource:
    """A rule set as text: (file name, text) pairs, sorted by name."""

    files: tuple[tuple[str, str], ...]

    @classmethod
    def from_path(cls, path: str | Path) -> tuple[RuleSource, RuleSet]:
        """Read and check the files; a broken set raises RuleFileError with the same
        file:line:col problems as `herald rules check`."""
        sources = read_rule_files(path)
        ruleset = parse_ruleset(sources)
        return cls(tuple(sorted((Path(name).name, body) for name, body in sources))), ruleset

    @classmethod
    def from_row(cls, row: m.RuleVersion) -> RuleSource:
        return cls(tuple((f["name"], f["text"]) for f in row.files))

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.files).encode()).hexdigest()

    def ruleset(self) -> RuleSet:
        return parse_ruleset(list(self.files))

    def as_json(self) -> list[dict[str, str]]:
        return [{"name": name, "text": body} for name, body in self.files]


@dataclass(frozen=True)
class Deployed:
    version: int  # the version in force afterwards
    stored: bool  # False: the content was already in force, nothing was stored
    content_hash: str


def ready(db: Database) -> bool:
    """Whether the schema holds the versions table (false before `herald migrate`)."""
    return inspect(db.engine).has_table(m.RuleVersion.__tablename__)


def active_version(s: Session) -> int | None:
    return s.scalar(select(func.max(m.RuleVersion.version)))


def active(s: Session) -> m.RuleVersion | None:
    return s.scalars(select(m.RuleVersion).order_by(m.RuleVersion.version.desc()).limit(1)).first()


def last_of(s: Session, changes: tuple[RulesChange, ...]) -> m.RuleVersion | None:
    return s.scalars(select(m.RuleVersion).where(m.RuleVersion.change.in_(changes))
                     .order_by(m.RuleVersion.version.desc()).limit(1)).first()


def get(s: Session, version: int) -> m.RuleVersion:
    row = s.get(m.RuleVersion, version)
    if row is None:
        raise NotFound(f"rule set version {version} does not exist (herald rules history)")
    return row


def history(s: Session, limit: int = 50) -> list[m.RuleVersion]:
    return list(s.scalars(select(m.RuleVersion).order_by(m.RuleVersion.version.desc())
                          .limit(limit)))


def deploy(s: Session, source: RuleSource, change: RulesChange, *, message: str = "",
           who: str = "", source_version: int | None = None,
           only_if_empty: bool = False) -> Deployed:
    """Store `source` as the new version in force, unless it is in force already (or,
    with only_if_empty, unless any version exists). Commit to make it active."""
    _lock(s)
    current = active(s)
    if current is not None and (only_if_empty or current.content_hash == source.content_hash):
        return Deployed(current.version, False, current.content_hash)
    row = m.RuleVersion(version=(current.version if current else 0) + 1,
                        content_hash=source.content_hash, files=source.as_json(),
                        change=change, source_version=source_version, message=message,
                        deployed_by=who, deployed_at=m.utcnow())
    s.add(row)
    s.flush()
    return Deployed(row.version, True, row.content_hash)


def rollback(s: Session, version: int, *, message: str = "", who: str = "") -> Deployed:
    """Put version N's content in force again, as a new version."""
    source = RuleSource.from_row(get(s, version))
    return deploy(s, source, RulesChange.ROLLBACK, message=message or f"rollback to {version}",
                  who=who, source_version=version)


def _lock(s: Session) -> None:
    # deploys queue behind each other (the next number is read, then used); reads go on
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("LOCK TABLE rule_versions IN SHARE ROW EXCLUSIVE MODE"))


def diff(old: m.RuleVersion, new: m.RuleVersion) -> str:
    """A unified diff per file from `old` to `new` (empty: same content)."""
    before, after = dict(RuleSource.from_row(old).files), dict(RuleSource.from_row(new).files)
    out: list[str] = []
    for name in sorted(before.keys() | after.keys()):
        out += difflib.unified_diff(
            before.get(name, "").splitlines(keepends=True),
            after.get(name, "").splitlines(keepends=True),
            fromfile=f"v{old.version}/{name}" if name in before else "/dev/null",
            tofile=f"v{new.version}/{name}" if name in after else "/dev/null")
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def summary(row: m.RuleVersion) -> dict[str, Any]:
    return {"version": row.version, "content_hash": row.content_hash, "change": row.change,
            "source_version": row.source_version, "message": row.message,
            "deployed_by": row.deployed_by, "deployed_at": row.deployed_at.isoformat(),
            "files": [f["name"] for f in row.files]}
