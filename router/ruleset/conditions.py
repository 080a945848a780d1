"""``when`` conditions: parse from YAML, normalise, evaluate, compile to durable_rules.

Grammar (a ``when`` is a mapping; several keys must all hold)::

    when:
      type: {prefix: "ticket."}          # field path -> matcher
      subject.visibility: public          # a bare value means equality
      data.priority: {gte: 3, lt: 9}      # several operators must all hold
      any: [{...}, {...}]                 # combinators: all / any / not
      not: {subject.kind: {in: [code, device]}}

Operators: ``eq``, ``neq``, ``in``, ``not_in``, ``prefix``, ``exists``, ``lt``,
``lte``, ``gt``, ``gte``.

Semantics, identical in the engine and in :func:`evaluate`: a comparison on a
field the event does not have (or has as null) is false — negated or not —
except ``exists: false``. ``not`` is pushed down to the comparisons (negation normal
form) before compiling, so ``not: {data.x: 5}`` means "data.x exists and is not 5".

durable_rules has no ``$in`` (compiled to ``$or`` of equalities) and its
``$mt`` pattern dialect rejects ``_``, ``-``, ``/``, ``:`` and most punctuation
(error 501, measured), so a ``prefix`` is evaluated while the fact is built and
reaches the engine as a boolean property the rule tests.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from router.core.errors import Problem
from router.ruleset.yamlpos import Located, Path

SCALAR = (str, int, float, bool)
COMPARE_OPS = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte", "neq": "$neq"}
NEGATED_OP = {"eq": "neq", "neq": "eq", "lt": "gte", "gte": "lt", "lte": "gt", "gt": "lte",
              "prefix": "not_prefix", "not_prefix": "prefix"}
OPERATORS = ("eq", "neq", "in", "not_in", "prefix", "exists", "lt", "lte", "gt", "gte")
COMBINATORS = ("all", "any", "not")
MARKER = "herald"  # every fact carries it; every rule requires it (no bare $nex rule)

EVENT_FIELDS = (
    "id", "type", "tenant", "occurred_at",
    "actor.id", "actor.kind", "actor.name", "actor.avatar_url",
    "subject.kind", "subject.id", "subject.number", "subject.template_id", "subject.group",
    "subject.code_id", "subject.customer_org_id", "subject.creator_id",
    "subject.visibility", "subject.language",
)
FREE_PREFIX = "data."


@dataclass(frozen=True)
class Cmp:
    path: str
    op: str  # eq neq lt lte gt gte prefix not_prefix
    value: Any


@dataclass(frozen=True)
class Exists:
    path: str
    present: bool


@dataclass(frozen=True)
class In:
    path: str
    values: tuple[Any, ...]
    negated: bool = False


@dataclass(frozen=True)
class All:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Not:
    item: Cond


Cond = Cmp | Exists | In | All | AnyOf | Not


# --------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self, src: Located) -> None:
        self.src = src
        self.problems: list[Problem] = []

    def fail(self, path: Path, message: str) -> None:
        self.problems.append(self.src.problem(path, message))

    def when(self, value: Any, path: Path) -> Cond:
        if not isinstance(value, dict) or not value:
            self.fail(path, "a condition must be a non-empty mapping of field paths to matchers")
            return All(())
        parts = [self.entry(key, item, path + (key,)) for key, item in value.items()]
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def entry(self, key: str, value: Any, path: Path) -> Cond:
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                self.fail(path, f"'{key}' needs a non-empty list of conditions")
                return All(())
            items = tuple(self.when(v, path + (i,)) for i, v in enumerate(value))
            return All(items) if key == "all" else AnyOf(items)
        if key == "not":
            return Not(self.when(value, path))
        self.field_path(key, path)
        return self.matcher(key, value, path)

    def field_path(self, key: str, path: Path) -> None:
        if key in EVENT_FIELDS or (key.startswith(FREE_PREFIX) and len(key) > len(FREE_PREFIX)):
            return
        guess = difflib.get_close_matches(key, EVENT_FIELDS + COMBINATORS, n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        self.fail(path, f"unknown field path {key!r} (event fields, or data.<name>){hint}")

    def matcher(self, field: str, value: Any, path: Path) -> Cond:
        if not isinstance(value, dict):
            return self.operator(field, "eq", value, path)
        if not value:
            self.fail(path, "empty matcher: give a value or an operator")
            return All(())
        parts = [self.operator(field, op, v, path + (op,)) for op, v in value.items()]
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def operator(self, field: str, op: str, value: Any, path: Path) -> Cond:
        if op not in OPERATORS:
            guess = difflib.get_close_matches(op, OPERATORS, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            self.fail(path, f"unknown operator {op!r} (known: {', '.join(OPERATORS)}){hint}")
            return All(())
        if op in ("in", "not_in"):
            return self._in(field, op, value, path)
        if op == "exists":
            if not isinstance(value, bool):
                self.fail(path, "'exists' takes true or false")
            return Exists(field, bool(value))
        if op in ("lt", "lte", "gt", "gte") and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            self.fail(path, f"'{op}' compares numbers; got {value!r}")
        elif op == "prefix" and not (isinstance(value, str) and value):
            self.fail(path, "'prefix' takes a non-empty string")
        elif not isinstance(value, SCALAR):
            self.fail(path, f"'{op}' takes a single plain value; got {type(value).__name__}")
        return Cmp(field, op, value)

    def _in(self, field: str, op: str, value: Any, path: Path) -> Cond:
        if not isinstance(value, list) or not value:
            self.fail(path, f"'{op}' takes a non-empty list of values")
            return All(())
        if not all(isinstance(v, SCALAR) for v in value):
            self.fail(path, f"'{op}' values must be plain values")
        return In(field, tuple(value), negated=op == "not_in")


def parse_when(src: Located, value: Any, path: Path) -> tuple[Cond, list[Problem]]:
    parser = _Parser(src)
    cond = parser.when(value, path)
    return cond, parser.problems


# --------------------------------------------------------------------------- normal form


def normalize(cond: Cond, negate: bool = False) -> Cond:
    """Negation normal form: ``Not`` disappears, comparisons flip."""
    if isinstance(cond, Not):
        return normalize(cond.item, not negate)
    if isinstance(cond, (All, AnyOf)):
        items = tuple(normalize(c, negate) for c in cond.items)
        return (AnyOf(items) if isinstance(cond, All) else All(items)) if negate else type(cond)(items)
    if not negate:
        return cond
    if isinstance(cond, Exists):
        return Exists(cond.path, not cond.present)
    if isinstance(cond, In):
        return In(cond.path, cond.values, not cond.negated)
    return Cmp(cond.path, NEGATED_OP[cond.op], cond.value)


def fields_of(cond: Cond) -> set[str]:
    if isinstance(cond, (All, AnyOf)):
        return set().union(*(fields_of(c) for c in cond.items)) if cond.items else set()
    if isinstance(cond, Not):
        return fields_of(cond.item)
    return {cond.path}


def prefixes_of(cond: Cond) -> set[tuple[str, str]]:
    if isinstance(cond, (All, AnyOf)):
        return set().union(*(prefixes_of(c) for c in cond.items)) if cond.items else set()
    if isinstance(cond, Not):
        return prefixes_of(cond.item)
    if isinstance(cond, Cmp) and cond.op in ("prefix", "not_prefix"):
        return {(cond.path, cond.value)}
    return set()


# --------------------------------------------------------------------------- evaluation

_MISSING = object()


def lookup(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            return _MISSING  # an explicit null counts as absent
        value = value[part]
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    if _number(a) and _number(b):
        return float(a) == float(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return type(a) is type(b) and a == b


def _compare(op: str, value: Any, ref: Any) -> bool:
    if op == "eq":
        return _equal(value, ref)
    if op == "neq":
        return not _equal(value, ref)
    if op in ("prefix", "not_prefix"):
        starts = isinstance(value, str) and value.startswith(ref)
        return starts if op == "prefix" else not starts
    if not _number(value):
        return False
    return bool({"lt": value < ref, "lte": value <= ref, "gt": value > ref,
                 "gte": value >= ref}[op])


def evaluate(cond: Cond, doc: dict[str, Any]) -> bool:
    """Plain-Python meaning of a normalised condition (the engine's reference)."""
    if isinstance(cond, All):
        return all(evaluate(c, doc) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(evaluate(c, doc) for c in cond.items)
    if isinstance(cond, Not):
        return evaluate(normalize(cond), doc)
    value = lookup(doc, cond.path)
    if isinstance(cond, Exists):
        return (value is not _MISSING) == cond.present
    if value is _MISSING or isinstance(value, (dict, list)):
        return False
    if isinstance(cond, In):
        hit = any(_equal(value, v) for v in cond.values)
        return not hit if cond.negated else hit
    return _compare(cond.op, value, cond.value)


def could_hold(cond: Cond, known: dict[str, Any]) -> bool:
    """Whether the condition can hold for some event whose fields in ``known`` are as
    given, the others being anything: false only when the known fields rule it out."""
    return _could(normalize(cond), known)


def _could(cond: Cond, known: dict[str, Any]) -> bool:
    if isinstance(cond, All):
        return all(_could(c, known) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(_could(c, known) for c in cond.items)
    assert not isinstance(cond, Not)  # normalised
    return lookup(known, cond.path) is _MISSING or evaluate(cond, known)


# --------------------------------------------------------------------------- durable_rules


class FactShape:
    """Which event fields and prefix flags the compiled rules look at."""

    def __init__(self, conds: Iterable[Cond]) -> None:
        conds = list(conds)
        self.fields: list[str] = sorted(set().union(*(fields_of(c) for c in conds)) if conds else set())
        pairs = sorted(set().union(*(prefixes_of(c) for c in conds)) if conds else set())
        self.flags: dict[tuple[str, str], str] = {pair: f"pf{i}" for i, pair in enumerate(pairs)}

    def fact(self, doc: dict[str, Any], fact_id: str) -> dict[str, Any]:
        fact: dict[str, Any] = {"id": fact_id, MARKER: 1}
        for path in self.fields:
            value = lookup(doc, path)
            if value is not _MISSING and not isinstance(value, (dict, list)):
                fact[path] = value
        for (path, prefix), flag in self.flags.items():
            value = lookup(doc, path)
            if value is not _MISSING and not isinstance(value, (dict, list)):
                fact[flag] = isinstance(value, str) and value.startswith(prefix)
        return fact


def to_durable(cond: Cond, shape: FactShape) -> dict[str, Any]:
    """Compile a condition (any form) into a durable_rules JSON expression."""
    return {"$and": [{MARKER: 1}, _durable(normalize(cond), shape)]}


def _durable(cond: Cond, shape: FactShape) -> dict[str, Any]:
    if isinstance(cond, (All, AnyOf)):
        key = "$and" if isinstance(cond, All) else "$or"
        if not cond.items:
            return {MARKER: 1} if key == "$and" else {MARKER: 0}
        return {key: [_durable(c, shape) for c in cond.items]}
    if isinstance(cond, Exists):
        return {"$ex" if cond.present else "$nex": {cond.path: 1}}
    if isinstance(cond, In):
        if cond.negated:
            return {"$and": [{"$neq": {cond.path: v}} for v in cond.values]}
        return {"$or": [{cond.path: v} for v in cond.values]}
    assert isinstance(cond, Cmp)
    if cond.op in ("prefix", "not_prefix"):
        return {shape.flags[(cond.path, cond.value)]: cond.op == "prefix"}
    if cond.op == "eq":
        return {cond.path: cond.value}
    return {COMPARE_OPS[cond.op]: {cond.path: cond.value}}
