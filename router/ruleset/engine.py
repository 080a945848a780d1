"""The durable_rules engine, owned by one object per process.

Each :class:`RuleEngine` owns its durable_rules :class:`_QuietHost` (background
dispatcher threads disabled: Herald needs no timers), its compiled sets, its name
and fact counters and its firings; nothing lives on the class. The C engine under
every host is one per process and not thread-safe, so every call into it takes
:data:`C_ENGINE_LOCK`, the one lock that stands for that process-wide resource. One
fixed session id. Each event is asserted as a *fact* with
a unique id, so every matching rule fires; the firings are collected and the
fact retracted. A ruleset name cannot be registered twice, so each compiled
version gets a fresh name, which is what makes a swap atomic.

A route batch pins the compiled set in force (:meth:`RuleEngine.pinned`) and uses
that one object for every event of the batch; a swap meanwhile only retires the old
set, which is freed when its last batch lets go of it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import durable_rules_engine
from durable import engine as durable

from router.ruleset.conditions import FactShape, to_durable
from router.ruleset.rulefile import Rule, RuleSet

log = logging.getLogger("herald.engine")
# The C engine's tables are process-wide whichever host calls it: one lock for them all.
C_ENGINE_LOCK = threading.RLock()


class _QuietHost(durable.Host):  # type: ignore[misc]  # durable_rules is untyped
    """A durable Host without its timer threads (they race the C heap)."""

    def _run(self) -> None:  # noqa: D401 - durable's hook
        return None


@dataclass
class CompiledRuleSet:
    name: str
    ruleset: RuleSet
    shape: FactShape
    definition: dict[str, Any]
    order: dict[str, int]  # rule id -> position in the files
    version: int | None = None  # the deployed version (None: files that were never deployed)
    users: int = 0  # batches holding it (changed under the engine lock)
    retired: bool = False  # swapped out: freed once no batch holds it
    freed: bool = False


@dataclass(frozen=True)
class PinnedRules:
    """One compiled version, held for a whole batch: every event is matched, planned
    and rendered with the same rules."""

    engine: RuleEngine
    compiled: CompiledRuleSet

    @property
    def ruleset(self) -> RuleSet:
        return self.compiled.ruleset

    @property
    def version(self) -> int | None:
        return self.compiled.version

    def match(self, doc: dict[str, Any]) -> list[str]:
        return self.engine.match_in(self.compiled, [doc])[0]


class RuleEngine:
    """Compiles rule sets into durable_rules and answers "which rules fire?"."""

    def __init__(self, ruleset: RuleSet, version: int | None = None) -> None:
        self._lock = C_ENGINE_LOCK
        self._host = _QuietHost()
        self._names = itertools.count(1)
        self._fact_ids = itertools.count(1)  # a fact lives only between its assert and retract
        self._fired: list[str] = []
        self._current = self._compile(ruleset, version)

    @property
    def ruleset(self) -> RuleSet:
        return self._current.ruleset

    @property
    def version(self) -> int | None:
        return self._current.version

    @contextmanager
    def pinned(self) -> Iterator[PinnedRules]:
        """The set in force now, kept alive (not freed by a swap) until the block ends."""
        with self._lock:
            current = self._current
            current.users += 1
        try:
            yield PinnedRules(self, current)
        finally:
            with self._lock:
                current.users -= 1
                self._free_if_unused(current)

    def _compile(self, ruleset: RuleSet, version: int | None) -> CompiledRuleSet:
        shape = FactShape(rule.when for rule in ruleset.rules)
        definition = {
            f"r{i}": {"all": [{"m": to_durable(rule.when, shape)}], "run": self._action(rule)}
            for i, rule in enumerate(ruleset.rules)
        }
        with self._lock:
            name = f"herald_{next(self._names)}_{uuid.uuid4().hex[:8]}"
            if definition:
                # Host() deletes the "run" keys from the dict it is given: pass a copy.
                self._host.set_rulesets({name: dict(definition)})
        order = {rule.id: i for i, rule in enumerate(ruleset.rules)}
        return CompiledRuleSet(name, ruleset, shape, definition, order, version)

    def _action(self, rule: Rule) -> Any:
        fired = self._fired

        def action(_closure: Any) -> None:
            fired.append(rule.id)

        return action

    def swap(self, ruleset: RuleSet, version: int | None = None) -> None:
        """Replace the rule set in force atomically (compiled before the lock is taken);
        the old one is freed as soon as no batch holds it."""
        fresh = self._compile(ruleset, version)
        with self._lock:
            old, self._current = self._current, fresh
            old.retired = True
            self._free_if_unused(old)
        log.info("rules.swapped", extra={"version": version, "rules": len(ruleset.rules),
                                         "ruleset": fresh.name})

    def close(self) -> None:
        """Free the set in force once no batch holds it (an engine no longer used)."""
        with self._lock:
            self._current.retired = True
            self._free_if_unused(self._current)

    def _free_if_unused(self, old: CompiledRuleSet) -> None:
        if old.retired and old.users == 0 and not old.freed:
            old.freed = True
            self._free(old)

    def _free(self, old: CompiledRuleSet) -> None:
        if not old.definition:
            return
        host = self._host
        handle = host.get_ruleset(old.name)._handle
        try:
            durable_rules_engine.delete_state(handle, "0")
        except Exception:  # noqa: BLE001 - a never-used sid has no state to delete
            pass
        durable_rules_engine.delete_ruleset(handle)
        host._ruleset_directory.pop(old.name, None)
        if old.name in [r._name for r in host._ruleset_list]:
            host._ruleset_list[:] = [r for r in host._ruleset_list if r._name != old.name]

    def match(self, doc: dict[str, Any]) -> list[str]:
        """Ids of every rule whose condition holds for the event document, in file order."""
        return self.match_many([doc])[0]

    def match_many(self, docs: Sequence[dict[str, Any]]) -> list[list[str]]:
        with self.pinned() as rules:
            return self.match_in(rules.compiled, docs)

    def match_in(self, compiled: CompiledRuleSet, docs: Sequence[dict[str, Any]]
                 ) -> list[list[str]]:
        with self._lock:
            if not compiled.definition:
                return [[] for _ in docs]
            return [self._match_one(compiled, doc) for doc in docs]

    def _match_one(self, current: CompiledRuleSet, doc: dict[str, Any]) -> list[str]:
        host = self._host
        fact = current.shape.fact(doc, f"f{next(self._fact_ids)}")  # retracted below
        self._fired.clear()
        try:
            host.assert_fact(current.name, dict(fact))
        except durable.MessageNotHandledException:
            return []
        fired = list(self._fired)
        self._fired.clear()
        host.retract_fact(current.name, dict(fact))
        return sorted(set(fired), key=current.order.__getitem__)
