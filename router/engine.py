"""The durable_rules engine, owned by one object per process.

durable_rules is not thread-safe and keeps a C-level host per process, so
:class:`RuleEngine` holds the single :class:`_QuietHost` (its background
dispatcher threads disabled: Herald needs no timers), one lock around every
engine call, and one fixed session id. Each event is asserted as a *fact* with
a unique id, so every matching rule fires; the firings are collected and the
fact retracted. A ruleset name cannot be registered twice, so each compiled
version gets a fresh name, which is what makes hot reload an atomic swap.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import durable_rules_engine
from durable import engine as durable

from router.conditions import FactShape, to_durable
from router.rulefile import Rule, RuleSet

log = logging.getLogger("herald.engine")


class _QuietHost(durable.Host):
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


class RuleEngine:
    """Compiles rule sets into durable_rules and answers "which rules fire?"."""

    _host: _QuietHost | None = None
    _lock = threading.RLock()  # one lock per process: the C engine is shared
    _names = itertools.count(1)
    _fact_ids = itertools.count(1)  # a fact lives only between its assert and retract

    def __init__(self, ruleset: RuleSet) -> None:
        self._fired: list[str] = []
        self._current = self._compile(ruleset)

    @property
    def ruleset(self) -> RuleSet:
        return self._current.ruleset

    @classmethod
    def _shared_host(cls) -> _QuietHost:
        if cls._host is None:
            cls._host = _QuietHost()
        return cls._host

    def _compile(self, ruleset: RuleSet) -> CompiledRuleSet:
        shape = FactShape(rule.when for rule in ruleset.rules)
        definition = {
            f"r{i}": {"all": [{"m": to_durable(rule.when, shape)}], "run": self._action(rule)}
            for i, rule in enumerate(ruleset.rules)
        }
        with self._lock:
            name = f"herald_{next(self._names)}_{uuid.uuid4().hex[:8]}"
            if definition:
                # Host() deletes the "run" keys from the dict it is given: pass a copy.
                self._shared_host().set_rulesets({name: dict(definition)})
        order = {rule.id: i for i, rule in enumerate(ruleset.rules)}
        return CompiledRuleSet(name, ruleset, shape, definition, order)

    def _action(self, rule: Rule) -> Any:
        fired = self._fired

        def action(_closure: Any) -> None:
            fired.append(rule.id)

        return action

    def swap(self, ruleset: RuleSet) -> None:
        """Replace the rule set in force atomically; the old one is freed."""
        fresh = self._compile(ruleset)
        with self._lock:
            old, self._current = self._current, fresh
            self._free(old)
        log.info("rules.swapped", extra={"rules": len(ruleset.rules), "ruleset": fresh.name})

    def _free(self, old: CompiledRuleSet) -> None:
        if not old.definition:
            return
        host = self._shared_host()
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
        with self._lock:
            current = self._current
            if not current.definition:
                return [[] for _ in docs]
            return [self._match_one(current, doc) for doc in docs]

    def _match_one(self, current: CompiledRuleSet, doc: dict[str, Any]) -> list[str]:
        host = self._shared_host()
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
