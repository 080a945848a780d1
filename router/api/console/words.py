"""Rules in plain words: conditions, selectors, which rules fire for an event type, and
a routing plan's timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.ruleset.conditions import All, AnyOf, Cmp, Cond, Exists, In, Not
from router.ruleset.rulefile import Rule, RuleSet, Selector
from router.ruleset.timing import format_duration

OPS = {"eq": "is", "neq": "is not", "lt": "is below", "lte": "is at most", "gt": "is above",
       "gte": "is at least", "prefix": "starts with", "not_prefix": "does not start with"}
OPS_DE = {"eq": "ist", "neq": "ist nicht", "lt": "ist kleiner als", "lte": "ist höchstens",
          "gt": "ist größer als", "gte": "ist mindestens", "prefix": "beginnt mit",
          "not_prefix": "beginnt nicht mit"}


def condition(cond: Cond, lang: str = "en") -> str:
    """`type: {prefix: "ticket."}` -> "type starts with “ticket.”"."""
    de = lang == "de"
    if isinstance(cond, Cmp):
        return f"{cond.path} {(OPS_DE if de else OPS).get(cond.op, cond.op)} “{cond.value}”"
    if isinstance(cond, Exists):
        if de:
            return f"{cond.path} ist {'angegeben' if cond.present else 'nicht angegeben'}"
        return f"{cond.path} is {'set' if cond.present else 'not set'}"
    if isinstance(cond, In):
        values = ", ".join(str(v) for v in cond.values)
        if de:
            return f"{cond.path} ist {'keins von' if cond.negated else 'eins von'} {values}"
        return f"{cond.path} is {'none of' if cond.negated else 'one of'} {values}"
    if isinstance(cond, All):
        return (" und " if de else " and ").join(_wrap(c, lang) for c in cond.items)
    if isinstance(cond, AnyOf):
        return (" oder " if de else " or ").join(_wrap(c, lang) for c in cond.items)
    assert isinstance(cond, Not)
    return ("nicht " if de else "not ") + _wrap(cond.item, lang)


def _wrap(cond: Cond, lang: str) -> str:
    text = condition(cond, lang)
    return f"({text})" if isinstance(cond, All | AnyOf) else text


SELECTORS = {
    "template_group": ("the {args} group of the subject's template (the responsible group, "
                       "else the first); departments and teams expanded; employees only",
                       "die Gruppe {args} der Vorlage des Vorgangs (die zuständige, sonst die "
                       "erste); Abteilungen und Teams aufgelöst; nur Mitarbeitende"),
    "creator": ("the subject's creator", "wer den Vorgang angelegt hat"),
    "participants": ("the subject's participants", "die Beteiligten des Vorgangs"),
    "role": ("every employee with the role {args}", "alle Mitarbeitenden mit der Rolle {args}"),
    "users": ("the users {args}", "die Benutzer {args}"),
    "customer_org": ("the customers of the subject's organisation",
                     "die Kunden der Organisation des Vorgangs"),
    "subscribers": ("code users signed up for the subject",
                    "Code-Nutzer, die sich für den Vorgang angemeldet haben"),
}


def selector(sel: Selector, lang: str = "en") -> str:
    pair = SELECTORS.get(sel.kind, (sel.label(), sel.label()))
    return pair[1 if lang == "de" else 0].format(args=", ".join(sel.args))


def holds(cond: Cond, known: dict[str, Any]) -> bool | None:
    """Whether ``cond`` holds for every event with these known fields: True, False, or
    None when it depends on fields only a real event has."""
    if isinstance(cond, All):
        results = [holds(c, known) for c in cond.items]
        return False if False in results else True if all(results) else None
    if isinstance(cond, AnyOf):
        results = [holds(c, known) for c in cond.items]
        return True if True in results else False if all(r is False for r in results) else None
    if isinstance(cond, Not):
        inner = holds(cond.item, known)
        return None if inner is None else not inner
    if cond.path not in known:
        return None
    value = known[cond.path]
    if isinstance(cond, Exists):
        return cond.present
    if isinstance(cond, In):
        return bool((value in cond.values) != cond.negated)
    if cond.op in ("prefix", "not_prefix"):
        return str(value).startswith(str(cond.value)) == (cond.op == "prefix")
    if cond.op in ("eq", "neq"):
        return bool((value == cond.value) == (cond.op == "eq"))
    return None


@dataclass(frozen=True)
class Audience:
    rule: Rule
    always: bool  # False: only when the rest of its condition holds


def audiences(ruleset: RuleSet, event_type: str) -> list[Audience]:
    """The rules that fire for every event of this type, or may (their condition depends
    on more than the type and the subject kind)."""
    spec = ruleset.events[event_type]
    known = {"type": event_type, "subject.kind": str(spec.subject)}
    found = []
    for rule in ruleset.rules:
        verdict = holds(rule.when, known)
        if verdict is not False:
            found.append(Audience(rule, verdict is True))
    return found


@dataclass(frozen=True)
class Moment:
    """One line of a plan's timeline: when, which channels, for whom, why."""

    at: str
    channels: str
    who: str
    why: str


def timeline(plan: dict[str, Any], lang: str = "en") -> list[Moment]:
    """When each channel of each receiver goes out, from a plan (as_dict): at once,
    after a time step, in a digest, or at the end of quiet hours."""
    now = "sofort" if lang == "de" else "now"
    held: dict[str, tuple[str, str]] = {}
    for step in plan.get("timing", []):
        when = (f"+{format_duration(step['after_s'])}" if "after_s" in step
                else f"≤ +{format_duration(step['window_s'])}")
        for channel in step["channels"]:
            held[channel] = (when, step.get("describe", ""))
    moments = []
    for r in plan.get("receivers", []):
        who = r.get("name") or r["id"]
        at_once = [c for c in r["channels"] if c not in held]
        deferred = r.get("deferred_until")
        for channel in r["channels"]:
            if channel in held:
                moments.append(Moment(held[channel][0], channel, who, held[channel][1]))
        quiet = [c for c in at_once if deferred and c != "browser"]
        if quiet:
            moments.append(Moment(deferred[11:16] + " UTC", ", ".join(quiet), who,
                                  r.get("quiet", "")))
        rest = [c for c in at_once if c not in quiet]
        if r.get("email_digest") and "email" in rest:
            rest.remove("email")
            moments.append(Moment(r["email_digest"], "email", who, "email digest cadence"))
        if rest:
            moments.append(Moment(now, ", ".join(rest), who, r["strategy"]))
    return sorted(moments, key=lambda m: (m.at != now, m.at))
