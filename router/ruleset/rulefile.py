"""Rule files: the event catalogue, the rules and the per-event defaults.

A rule set is every ``*.yaml`` in the rules directory (``*.test.yaml`` files are
rule test cases, not rules). Loading validates everything and reports each
problem as ``file:line:col: message``; a broken set raises RuleFileError and
never replaces the set in force.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from router.core.enums import Channel, Origin, Strategy, SubjectKind, Submodule
from router.core.errors import Problem, RuleFileError
from router.core.inputs import LANGUAGE_PATTERN
from router.ruleset.conditions import Cond, parse_when
from router.ruleset.timing import Fold, TimeStep, parse_folds, parse_steps
from router.ruleset.yamlpos import Located, load_located, read_limited

YamlPath = tuple[str | int, ...]  # keys and list indexes from a rule file's root

SELECTORS_WITH_ARGS = {"template_group", "role", "users"}
SELECTORS_BARE = {"creator", "participants", "customer_org", "subscribers"}
SELECTORS = SELECTORS_WITH_ARGS | SELECTORS_BARE
EXCLUSIONS = {"actor", "creator"}
URGENCIES = ("very-low", "low", "normal", "high")
TOP_KEYS = {"events", "rules", "defaults", "titles"}
LANGUAGE_TAG = re.compile(LANGUAGE_PATTERN)


@dataclass(frozen=True)
class EventSpec:
    type: str
    subject: SubjectKind
    title: str
    description: str = ""
    ttl_s: int | None = None
    urgency: str = "normal"
    timing: tuple[TimeStep, ...] = ()  # delay / escalate (router.ruleset.timing)
    critical: bool = False  # bypasses quiet hours, throttles and digest cadences
    folds: tuple[Fold, ...] = ()  # digest / throttle (router.ruleset.timing)


@dataclass(frozen=True)
class Selector:
    kind: str  # one of SELECTORS
    args: tuple[str, ...] = ()

    def label(self) -> str:
        return f"{self.kind}: {', '.join(self.args)}" if self.args else self.kind


@dataclass(frozen=True)
class ChannelPrefs:
    channels: tuple[Channel, ...]
    origin: frozenset[Origin]
    strategy: Strategy

    def as_dict(self) -> dict[str, Any]:
        return {
            "channels": [str(c) for c in self.channels],
            "origin": sorted(str(o) for o in self.origin),
            "strategy": str(self.strategy),
        }


BUILTIN_DEFAULT = ChannelPrefs(
    channels=(Channel.BROWSER, Channel.PUSH, Channel.EMAIL),
    origin=frozenset({Origin.OTHERS}),
    strategy=Strategy.ALL,
)


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    when: Cond
    receivers: tuple[Selector, ...]
    channels: frozenset[Channel] | None = None
    excludes: frozenset[str] = frozenset()
    file: str = ""
    line: int = 0


@dataclass
class RuleSet:
    events: dict[str, EventSpec] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    defaults: dict[str, ChannelPrefs] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    titles: dict[str, dict[str, str]] = field(default_factory=dict)  # language -> type -> title

    def title(self, event_type: str, language: str = "") -> str:
        """The event type's name in this language (de-AT falls back to de), else the
        catalogue's own title."""
        tag = language.lower().replace("_", "-")
        for lang in (tag, tag.split("-")[0]):
            found = self.titles.get(lang, {}).get(event_type)
            if found:
                return found
        spec = self.events.get(event_type)
        return spec.title if spec else event_type

    def default_for(self, event_type: str) -> ChannelPrefs:
        return self.defaults.get(event_type) or self.defaults.get("all") or BUILTIN_DEFAULT

    def timing(self, event_type: str) -> tuple[TimeStep, ...]:
        spec = self.events.get(event_type)
        return spec.timing if spec else ()

    def folds(self, event_type: str) -> tuple[Fold, ...]:
        spec = self.events.get(event_type)
        return spec.folds if spec else ()

    def cancels(self, event_type: str) -> list[str]:
        """The event types whose delayed deliveries an event of this type cancels."""
        return [spec.type for spec in self.events.values()
                if any(event_type in step.cancel_on for step in spec.timing)]


def parse_prefs(raw: Any, where: str = "") -> tuple[ChannelPrefs | None, list[str]]:
    """Validate one channel-preferences row (rule-file default or user setting)."""
    errors: list[str] = []
    if not isinstance(raw, dict):
        return None, [f"{where}must be a mapping with channels, origin, strategy"]
    unknown = set(raw) - {"channels", "origin", "strategy"}
    if unknown:
        errors.append(f"{where}unknown keys {sorted(unknown)} (allowed: channels, origin, strategy)")
    channels = _enum_list(raw.get("channels", [c.value for c in BUILTIN_DEFAULT.channels]),
                          Channel, f"{where}channels", errors)
    if len(set(channels)) != len(channels):
        errors.append(f"{where}channels lists a channel twice")
    origin = _enum_list(raw.get("origin", ["others"]), Origin, f"{where}origin", errors)
    strategy_raw = raw.get("strategy", "all")
    if strategy_raw not in {s.value for s in Strategy}:
        errors.append(f"{where}strategy must be 'all' or 'first_success', got {strategy_raw!r}")
    if errors:
        return None, errors
    return ChannelPrefs(tuple(channels), frozenset(origin), Strategy(strategy_raw)), []


def _enum_list(raw: Any, enum: type[StrEnum], where: str, errors: list[str]) -> list[Any]:
    if not isinstance(raw, list):
        errors.append(f"{where} must be a list")
        return []
    allowed = {e.value for e in enum}
    bad = [v for v in raw if v not in allowed]
    if bad:
        errors.append(f"{where}: unknown {bad} (allowed: {', '.join(sorted(allowed))})")
    return [enum(v) for v in raw if v in allowed]


class _FileParser:
    def __init__(self, src: Located) -> None:
        self.src = src
        self.problems: list[Problem] = []
        self.type_refs: list[tuple[YamlPath, str]] = []  # checked once every file is read

    def fail(self, path: YamlPath, message: str) -> None:
        self.problems.append(self.src.problem(path, message))

    def parse(self, into: RuleSet) -> list[tuple[YamlPath, Any]]:
        data = self.src.data
        if not isinstance(data, dict):
            self.fail((), "a rule file is a mapping with 'events', 'rules' and 'defaults'")
            return []
        for key in set(data) - TOP_KEYS:
            self.fail((key,), f"unknown top-level key {key!r} "
                      "(allowed: events, rules, defaults, titles)")
        self.events(data.get("events", {}), into)
        self.defaults(data.get("defaults", {}), into)
        self.titles(data.get("titles", {}), into)
        raw_rules = data.get("rules", [])
        if not isinstance(raw_rules, list):
            self.fail(("rules",), "'rules' must be a list")
            return []
        return [(("rules", i), r) for i, r in enumerate(raw_rules)]

    def events(self, raw: Any, into: RuleSet) -> None:
        if not isinstance(raw, dict):
            self.fail(("events",), "'events' must map event types to their description")
            return
        for etype, spec in raw.items():
            self.event(etype, spec, into)

    def event(self, etype: str, spec: Any, into: RuleSet) -> None:
        path = ("events", etype)
        if etype in into.events:
            self.fail(path, f"event type {etype!r} is already defined in another file")
        if not isinstance(spec, dict):
            self.fail(path, "an event needs at least 'subject' and 'title'")
            return
        unknown = set(spec) - {"subject", "title", "description", "ttl", "urgency", "delay",
                               "escalate", "critical", "digest", "throttle"}
        if unknown:
            self.fail(path, f"unknown keys {sorted(unknown)}")
        subject = spec.get("subject")
        if subject not in {k.value for k in SubjectKind}:
            self.fail(path + ("subject",), f"subject must be one of "
                      f"{', '.join(k.value for k in SubjectKind)}; got {subject!r}")
            return
        urgency = spec.get("urgency", "normal")
        if urgency not in URGENCIES:
            self.fail(path + ("urgency",), f"urgency must be one of {', '.join(URGENCIES)}")
        ttl = spec.get("ttl")
        if ttl is not None and (not isinstance(ttl, int) or ttl < 0):
            self.fail(path + ("ttl",), "ttl is a number of seconds >= 0")
        timing = parse_steps(spec, path, self.fail)
        self.type_refs += [(path + ("delay", "cancel_on", i), t) for step in timing
                           for i, t in enumerate(step.cancel_on)]
        critical = spec.get("critical", False)
        if not isinstance(critical, bool):
            self.fail(path + ("critical",), f"critical is true or false; got {critical!r}")
        folds = parse_folds(spec, path, self.fail, timing, critical is True)
        into.events[etype] = EventSpec(etype, SubjectKind(subject), str(spec.get("title", etype)),
                                       str(spec.get("description", "")), ttl, urgency, timing,
                                       critical is True, folds)

    def defaults(self, raw: Any, into: RuleSet) -> None:
        if not isinstance(raw, dict):
            self.fail(("defaults",), "'defaults' maps 'all' or an event type to channel settings")
            return
        for key, row in raw.items():
            prefs, errors = parse_prefs(row)
            for error in errors:
                self.fail(("defaults", key), error)
            if prefs:
                into.defaults[key] = prefs

    def titles(self, raw: Any, into: RuleSet) -> None:
        if not isinstance(raw, dict):
            self.fail(("titles",), "'titles' maps a language (de) to event types and their titles")
            return
        for lang, names in raw.items():
            path: YamlPath = ("titles", lang)
            if not isinstance(lang, str) or not LANGUAGE_TAG.match(lang):
                self.fail(path, f"{lang!r} is not a language tag such as de or pt-BR")
            elif not isinstance(names, dict):
                self.fail(path, "map each event type to its title in this language")
            else:
                self.titles_in(lang.lower().replace("_", "-"), names, path, into)

    def titles_in(self, lang: str, names: dict[Any, Any], path: YamlPath, into: RuleSet) -> None:
        known = into.titles.setdefault(lang, {})
        for etype, title in names.items():
            if not isinstance(title, str) or not title.strip():
                self.fail(path + (etype,), "a title is a non-empty string")
            elif etype in known:
                self.fail(path + (etype,), f"the {lang} title of {etype!r} is already given")
            else:
                known[etype] = title.strip()
                self.type_refs.append((path + (etype,), str(etype)))

    def rule(self, path: YamlPath, raw: Any, into: RuleSet) -> Rule | None:
        if not isinstance(raw, dict):
            self.fail(path, "a rule is a mapping with id, when and receivers")
            return None
        unknown = set(raw) - {"id", "description", "when", "receivers", "channels", "except"}
        for key in unknown:
            self.fail(path + (key,), f"unknown rule key {key!r}")
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not rule_id:
            self.fail(path, "a rule needs a string 'id'")
            return None
        if "when" not in raw:
            self.fail(path, f"rule {rule_id!r} has no 'when'")
        cond, problems = parse_when(self.src, raw.get("when", {}), path + ("when",))
        self.problems += problems
        receivers = self.receivers(raw.get("receivers"), path + ("receivers",))
        channels = self.channels(raw.get("channels"), path + ("channels",))
        excludes = self.excludes(raw.get("except", []), path + ("except",))
        return Rule(rule_id, str(raw.get("description", "")), cond, receivers, channels,
                    excludes, self.src.file, self.src.where(path)[0])

    def receivers(self, raw: Any, path: YamlPath) -> tuple[Selector, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail(path, "'receivers' must be a non-empty list of selectors")
            return ()
        found = [self.selector(item, path + (i,)) for i, item in enumerate(raw)]
        return tuple(s for s in found if s)

    def selector(self, raw: Any, path: YamlPath) -> Selector | None:
        if isinstance(raw, str):
            name, arg = raw, None
        elif isinstance(raw, dict) and len(raw) == 1:
            name, arg = next(iter(raw.items()))
        else:
            self.fail(path, "a selector is a name (creator) or one 'name: argument' pair")
            return None
        if name not in SELECTORS:
            guess = difflib.get_close_matches(name, SELECTORS, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            self.fail(path, f"unknown selector {name!r} (known: {', '.join(sorted(SELECTORS))}){hint}")
            return None
        return self.selector_args(name, arg, path)

    def selector_args(self, name: str, arg: Any, path: YamlPath) -> Selector | None:
        if name in SELECTORS_BARE:
            if arg not in (None, True):
                self.fail(path, f"selector {name!r} takes no argument")
            return Selector(name)
        args = [arg] if isinstance(arg, str) else arg
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            self.fail(path, f"selector {name!r} needs a name or a list of names")
            return None
        if name == "template_group":
            submodules = {s.value for s in Submodule}
            bad = [a for a in args if a not in submodules]
            if bad:
                self.fail(path, f"template_group must be one of {', '.join(sorted(submodules))}; "
                          f"got {bad}")
                return None
        return Selector(name, tuple(args))

    def channels(self, raw: Any, path: YamlPath) -> frozenset[Channel] | None:
        if raw is None:
            return None
        errors: list[str] = []
        found = _enum_list(raw, Channel, "channels", errors)
        for error in errors:
            self.fail(path, error)
        return frozenset(found)

    def excludes(self, raw: Any, path: YamlPath) -> frozenset[str]:
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or any(i not in EXCLUSIONS for i in items):
            self.fail(path, f"'except' takes a list out of: {', '.join(sorted(EXCLUSIONS))}")
            return frozenset()
        return frozenset(items)


def rule_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.yaml") if not p.name.endswith(".test.yaml"))


def read_rule_files(path: str | Path) -> list[tuple[str, str]]:
    """(file as named in problems, text) of every rule file under path."""
    root = Path(path)
    files = rule_files(root)
    if not files:
        raise RuleFileError([Problem(f"no rule files (*.yaml) found at {root}", file=str(root),
                                     line=1, column=1)])
    sources, problems = [], []
    for file in files:
        text, unreadable = read_limited(file)
        problems += unreadable
        if text is not None:
            sources.append((str(file), text))
    if problems:
        raise RuleFileError(problems)
    return sources


def load_ruleset(path: str | Path) -> RuleSet:
    """Load and validate every rule file under path; raise RuleFileError listing all problems."""
    return parse_ruleset(read_rule_files(path))


def parse_ruleset(sources: list[tuple[str, str]]) -> RuleSet:
    """Validate rule files given as (name, text), from disk or from a deployed version."""
    problems: list[Problem] = []
    ruleset = RuleSet(files=[name for name, _ in sources])
    pending: list[tuple[_FileParser, YamlPath, Any]] = []
    parsers: list[_FileParser] = []
    for name, text in sources:
        src, syntax = load_located(text, name)
        problems += syntax
        if src is None:
            continue
        parser = _FileParser(src)
        parsers.append(parser)
        pending += [(parser, p, raw) for p, raw in parser.parse(ruleset)]
        problems += parser.problems
        parser.problems = []
    problems += _rules(pending, ruleset)
    problems += [_unknown_type(parser, path, etype, ruleset) for parser in parsers
                 for path, etype in parser.type_refs if etype not in ruleset.events]
    if problems:
        raise RuleFileError(problems)
    return ruleset


def _rules(pending: list[tuple[_FileParser, YamlPath, Any]], ruleset: RuleSet) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, Rule] = {}
    for parser, path, raw in pending:
        rule = parser.rule(path, raw, ruleset)
        if rule:
            parser.problems += _unknown_types(parser, path, raw, ruleset)
        if rule and rule.id in seen:
            first = seen[rule.id]
            parser.fail(path + ("id",), f"duplicate rule id {rule.id!r} "
                        f"(first defined at {first.file}:{first.line})")
        elif rule:
            seen[rule.id] = rule
            ruleset.rules.append(rule)
        problems += parser.problems
        parser.problems = []
    for key in ruleset.defaults:
        if key != "all" and key not in ruleset.events:
            problems.append(Problem(f"defaults for unknown event type {key!r}",
                                    file=ruleset.files[0], line=1, column=1))
    return problems


def _unknown_types(parser: _FileParser, path: YamlPath, raw: dict[str, Any],
                   ruleset: RuleSet) -> list[Problem]:
    """Event types named in a rule's `type` condition must exist in the catalogue."""
    return [_unknown_type(parser, type_path, value, ruleset)
            for type_path, value in _type_literals(raw.get("when"), path + ("when",))
            if value not in ruleset.events]


def _unknown_type(parser: _FileParser, path: YamlPath, etype: str, ruleset: RuleSet) -> Problem:
    guess = difflib.get_close_matches(etype, list(ruleset.events), n=1)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return parser.src.problem(path, f"unknown event type {etype!r}{hint}")


def _type_literals(when: Any, path: YamlPath) -> list[tuple[YamlPath, str]]:
    if isinstance(when, list):
        return [hit for i, w in enumerate(when) for hit in _type_literals(w, path + (i,))]
    if not isinstance(when, dict):
        return []
    hits: list[tuple[YamlPath, str]] = []
    for key, value in when.items():
        if key == "type":
            hits += _literal_values(value, path + (key,))
        elif key in ("all", "any", "not"):
            hits += _type_literals(value, path + (key,))
    return hits


def _literal_values(value: Any, path: YamlPath) -> list[tuple[YamlPath, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if not isinstance(value, dict):
        return []
    hits: list[tuple[YamlPath, str]] = []
    for op in ("eq", "neq"):
        if isinstance(value.get(op), str):
            hits.append((path + (op,), value[op]))
    for op in ("in", "not_in"):
        if isinstance(value.get(op), list):
            hits += [(path + (op, i), v) for i, v in enumerate(value[op]) if isinstance(v, str)]
    return hits
