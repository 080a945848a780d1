"""Following the rule set version in force (DESIGN §9).

Every process (API replica, worker, embedded server) asks the database for the
version in force every second and swaps its engine to it when it changed: a query on
the versions table's primary key, the same on PostgreSQL and SQLite, and nothing to
miss when a notice is lost. Rules are compiled from the stored text, never from this
machine's files. Embedded mode also watches the files at ``rules_path`` and deploys
a valid edit as a new version (a broken one is refused and logged).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from router.core.enums import RulesChange
from router.core.errors import RuleFileError
from router.ruleset import ruleversions as rv
from router.ruleset.engine import RuleEngine
from router.ruleset.rulefile import RuleSet, load_ruleset, rule_files
from router.store.db import Database
from router.store.models import RuleVersion

log = logging.getLogger("herald.rules")
POLL_S = 1.0  # a deploy is followed within this (plus a compile: ~10 ms for the shipped set)
FROM_FILES = (RulesChange.BOOTSTRAP, RulesChange.FILE_EDIT)
CACHED_VERSIONS = 2  # other versions kept compiled for explain ?rules_version=N


class RuleSync:
    """Owns the process's RuleEngine and keeps it on the version in force."""

    def __init__(self, db: Database, rules_path: str, *, deploy_files: bool) -> None:
        self.db = db
        self.rules_path = rules_path
        self.deploy_files = deploy_files  # embedded mode: file edits become versions
        self._stamp = self._files_stamp()
        self._stop = threading.Event()
        self._refused: int | None = None  # a stored version this code cannot compile
        self._others: OrderedDict[int, RuleEngine] = OrderedDict()
        self._others_lock = threading.Lock()
        self.engine = RuleEngine(*self._first_rules())

    # ------------------------------------------------------------------ start-up

    def _first_rules(self) -> tuple[RuleSet, int | None]:
        """The version in force; on an empty table the files become version 1. Before
        the schema exists (`herald serve` migrates SQLite after start-up) the files."""
        if not rv.ready(self.db):
            return load_ruleset(self.rules_path), None
        if self.deploy_files:
            self._deploy_files()
        with self.db.session() as s:
            row = rv.active(s)
        if row is None:  # a broken set raises here: there is nothing to route with
            source, _ = rv.RuleSource.from_path(self.rules_path)
            with self.db.session() as s:
                rv.deploy(s, source, RulesChange.BOOTSTRAP, only_if_empty=True,
                          message=f"files at {self.rules_path}", who=_who())
            with self.db.session() as s:
                row = rv.active(s)
            assert row is not None
        log.info("rules.loaded", extra={"version": row.version})
        return rv.RuleSource.from_row(row).ruleset(), row.version

    def bootstrap(self) -> int | None:
        """After a migration: on an empty table the files become version 1; follow it."""
        ruleset, version = self._first_rules()
        if version != self.engine.version:
            self.engine.swap(ruleset, version)
        return version

    def _deploy_files(self) -> None:
        """Embedded mode: the files at rules_path as a new version, if valid and new."""
        try:
            source, _ = rv.RuleSource.from_path(self.rules_path)
        except RuleFileError as exc:
            log.error("rules.deploy_refused", extra={
                "path": self.rules_path, "problems": [p.located() for p in exc.problems]})
            return
        with self.db.session() as s:
            last = rv.last_of(s, FROM_FILES)
            if last is not None and last.content_hash == source.content_hash:
                return  # deployed before (a rollback since then stays in force)
            change = RulesChange.FILE_EDIT if rv.active_version(s) else RulesChange.BOOTSTRAP
            done = rv.deploy(s, source, change, message=f"files at {self.rules_path}",
                             who=_who())
        if done.stored:
            log.info("rules.deployed", extra={"version": done.version, "change": str(change)})

    # ------------------------------------------------------------------ following

    def sync(self) -> None:
        """One step: deploy edited files (embedded), then follow the version in force."""
        if self.deploy_files:
            stamp = self._files_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                self._deploy_files()
        with self.db.session() as s:
            version = rv.active_version(s)
            if version is None or version in (self.engine.version, self._refused):
                return
            row = rv.get(s, version)
        self._swap(row)

    def _swap(self, row: RuleVersion) -> None:
        try:
            ruleset = rv.RuleSource.from_row(row).ruleset()
        except RuleFileError as exc:  # stored by a Herald that accepted what this one refuses
            self._refused = row.version
            log.error("rules.swap_refused", extra={
                "version": row.version, "problems": [p.located() for p in exc.problems]})
            return
        self.engine.swap(ruleset, row.version)

    def start(self, interval: float = POLL_S) -> threading.Thread:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.sync()
                except SQLAlchemyError as exc:  # the database is away: ask again next time
                    log.warning("rules.poll_failed", extra={"error": str(exc)})

        thread = threading.Thread(target=loop, name="herald-rules-follow", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _files_stamp(self) -> tuple[tuple[str, float], ...]:
        if not self.deploy_files:
            return ()
        path = Path(self.rules_path)
        return tuple((str(p), p.stat().st_mtime) for p in rule_files(path)) if path.exists() \
            else ()

    # ------------------------------------------------------------------ other versions

    def engine_for(self, version: int | None) -> RuleEngine:
        """The engine in force, or one compiled for an older version (kept for reuse)."""
        if version is None or version == self.engine.version:
            return self.engine
        with self._others_lock:
            if version in self._others:
                self._others.move_to_end(version)
                return self._others[version]
        with self.db.session() as s:
            ruleset = rv.RuleSource.from_row(rv.get(s, version)).ruleset()
        engine = RuleEngine(ruleset, version)
        with self._others_lock:
            self._others[version] = engine
            while len(self._others) > CACHED_VERSIONS:
                self._others.popitem(last=False)[1].close()
        return engine


def _who() -> str:
    return os.environ.get("USER", "")
