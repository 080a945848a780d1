"""The routing plan: matched rules -> receivers -> settings filter (DESIGN §1-§2).

:func:`plan_event` is pure with respect to the database: it reads through a
:class:`DirectoryView` and returns a :class:`RoutingPlan` that says who gets
the event on which channels with which strategy, why, and what was dropped by
which setting. Writing feed items and deliveries is the pipeline's job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from router.core.enums import (
    DEFERRABLE,
    Channel,
    Origin,
    ReceiverKind,
    Strategy,
    Submodule,
    UserKind,
    Visibility,
)
from router.directory.audience import DirectoryUser, DirectoryView
from router.directory.quiet import Deferral
from router.directory.settings import effective_prefs
from router.routing.events import Event
from router.ruleset.engine import PinnedRules, RuleEngine
from router.ruleset.rulefile import ChannelPrefs, Rule, RuleSet, Selector
from router.ruleset.timing import Fold, TimeStep
from router.store import models as m
from router.store.models import utcnow

CODE_USER_CHANNELS = (Channel.EMAIL, Channel.PUSH)


@dataclass(frozen=True)
class Reason:
    rule: str
    selector: str


@dataclass
class PlannedReceiver:
    kind: ReceiverKind
    id: str
    name: str
    language: str
    channels: list[Channel]
    strategy: Strategy
    reasons: list[Reason]
    prefs_source: str = ""
    email: str | None = None
    deferred: Deferral | None = None  # quiet hours: push and email wait until then
    quiet: str = ""  # what quiet hours did to this receiver, in words
    cadence: Deferral | None = None  # their email digest cadence: email waits until then


@dataclass(frozen=True)
class Nobody:
    """A selector of a matched rule that found no receiver, and why (the directory does
    not know the subject, the template has no such group, the group is empty, ...)."""

    rule: str
    selector: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "selector": self.selector, "reason": self.reason}


class Drop(NamedTuple):
    """Why a receiver, or one of its channels, was left out, and the setting that did it."""

    reason: str
    setting: str
    channel: Channel | None = None  # None: the whole receiver was dropped


class Dropped(NamedTuple):
    """One drop of one receiver (explain lists them so)."""

    kind: ReceiverKind
    id: str
    reason: str
    setting: str
    channel: Channel | None = None


Drops = tuple[ReceiverKind, str, tuple[Drop, ...]]  # a receiver and what of it was dropped


@dataclass
class RoutingPlan:
    event_id: str
    event_type: str
    matched_rules: list[dict[str, str]]
    receivers: list[PlannedReceiver] = field(default_factory=list)
    # receivers planned alike share one tuple of drops: a fan-out to 50,000 drops 100,000
    drops: list[Drops] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    nobody: list[Nobody] = field(default_factory=list)  # selectors that found no receiver
    rules_version: int | None = None  # the deployed rule set version it was planned with
    timing: tuple[TimeStep, ...] = ()  # the event type's delay / escalate steps
    folds: tuple[Fold, ...] = ()  # the event type's digest / throttle

    @property
    def dropped(self) -> list[Dropped]:
        """Each drop on its own, in the order they were made."""
        return [Dropped(kind, rid, *d) for kind, rid, drops in self.drops for d in drops]

    def as_dict(self) -> dict[str, Any]:
        """The plan as explain and the activity view show it: a dict per receiver."""
        return expand(self.stored())

    def stored(self) -> dict[str, Any]:
        """The plan as it is stored with the routed event: receivers (and dropped ones) that
        share everything but who they are in one group, with their ids, names and e-mail
        addresses side by side. A fan-out to 50,000 is then ~1.5 MB of JSON, not 12 MB,
        which PostgreSQL took 1.3 s to take in (decision "A stored plan groups its
        receivers"); :func:`expand` gives the dict per receiver back."""
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        shared: dict[Any, Any] = {}

        def once(key: Any, build: Any) -> Any:
            if key not in shared:
                shared[key] = build()
            return shared[key]

        for r in self.receivers:
            key = (r.kind, r.language, tuple(r.channels), r.strategy, tuple(map(id, r.reasons)),
                   r.prefs_source, r.quiet, r.deferred.until if r.deferred else None,
                   r.cadence.label if r.cadence else None)
            group = groups.get(key)
            if group is None:
                group = groups[key] = {"shared": {
                    "kind": str(r.kind), "language": r.language,
                    "channels": once(tuple(r.channels), lambda r=r: [str(c) for c in r.channels]),
                    "strategy": str(r.strategy),
                    "reasons": once(tuple(map(id, r.reasons)), lambda r=r: [
                        {"rule": x.rule, "selector": x.selector} for x in r.reasons]),
                    "prefs_source": r.prefs_source,
                    **(_quiet_fields(r) if r.quiet else NOTHING),
                    **({"email_digest": r.cadence.label} if r.cadence else NOTHING)},
                    "ids": [], "names": [], "emails": []}
            group["ids"].append(r.id)
            group["names"].append(r.name)
            group["emails"].append(r.email)
        dropped: dict[tuple[Any, ...], dict[str, Any]] = {}
        into: dict[tuple[ReceiverKind, int], list[list[str]]] = {}  # their groups' ids
        for kind, rid, drops in self.drops:
            lists = into.get((kind, id(drops)))
            if lists is None:
                lists = into[(kind, id(drops))] = [_dropped_group(dropped, kind, d)["ids"]
                                                   for d in drops]
            for ids in lists:
                ids.append(rid)
        return {
            "event_id": self.event_id, "event_type": self.event_type,
            "matched_rules": [dict(r) for r in self.matched_rules],
            "receiver_groups": list(groups.values()),
            "dropped_groups": list(dropped.values()),
            "notes": list(self.notes),
            "nobody": [n.as_dict() for n in self.nobody],
            "rules_version": self.rules_version,
            "timing": [step.as_dict() for step in self.timing]
            + [fold.as_dict() for fold in self.folds],
        }

    def receiver(self, kind: ReceiverKind, rid: str) -> PlannedReceiver | None:
        return next((r for r in self.receivers if r.kind == kind and r.id == rid), None)


NOTHING: dict[str, Any] = {}


def _dropped_group(groups: dict[tuple[Any, ...], dict[str, Any]], kind: ReceiverKind,
                   d: Drop) -> dict[str, Any]:
    key = (kind, d.reason, d.setting, d.channel)
    if key not in groups:
        groups[key] = {"shared": {"kind": str(kind), "reason": d.reason, "setting": d.setting,
                                  "channel": str(d.channel) if d.channel else None}, "ids": []}
    return groups[key]


def expand(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored plan with a dict per receiver and per dropped receiver (what explain and
    the activity view show); a plan stored before receivers were grouped is already so."""
    if "receiver_groups" not in stored:
        return stored
    plan = {k: v for k, v in stored.items() if k not in ("receiver_groups", "dropped_groups")}
    plan["receivers"] = [
        {"kind": g["shared"]["kind"], "id": rid, "name": name, **g["shared"], "email": email}
        for g in stored["receiver_groups"]
        for rid, name, email in zip(g["ids"], g["names"], g["emails"], strict=True)]
    plan["dropped"] = [{**g["shared"], "id": rid} for g in stored.get("dropped_groups", [])
                       for rid in g["ids"]]
    return plan


def receiver_count(stored: dict[str, Any] | None) -> int:
    """How many receivers a stored plan has, without expanding it."""
    if not stored:
        return 0
    if "receiver_groups" in stored:
        return sum(len(g["ids"]) for g in stored["receiver_groups"])
    return len(stored.get("receivers", []))


def _quiet_fields(r: PlannedReceiver) -> dict[str, Any]:
    """Only for receivers quiet hours touched: a fan-out's stored plan stays small."""
    return {"quiet": r.quiet,
            "deferred_until": r.deferred.until.isoformat() if r.deferred else None}


def enrich(event: Event, view: DirectoryView) -> dict[str, Any]:
    """The event document with the stored subject filling what the event left open."""
    doc = event.as_doc()
    subject = doc["subject"]
    stored = view.subject(subject["kind"], subject["id"])
    if stored is not None:
        for key in ("template_id", "group", "code_id", "customer_org_id", "creator_id",
                    "visibility", "language"):
            if subject.get(key) is None:
                subject[key] = getattr(stored, key)
        if not subject.get("number"):
            subject["number"] = stored.number
    subject["visibility"] = subject.get("visibility") or Visibility.PUBLIC.value
    subject["participants"] = list(dict.fromkeys(
        subject.get("participants", []) + view.participants(subject["kind"], subject["id"])))
    return doc


class Settlement(NamedTuple):
    """How a user comes out of the settings filter, apart from who they are: what was
    dropped, and the receiver planned (its id, name and e-mail address left empty)."""

    drops: tuple[Drop, ...]
    receiver: PlannedReceiver | None = None


KINDS = {str(kind): kind for kind in ReceiverKind}


@dataclass
class _Candidate:
    kind: ReceiverKind
    id: str
    reasons: list[Reason] = field(default_factory=list)
    restrict: set[Channel] | None = field(default_factory=set)  # None: unrestricted
    subscription: m.Subscription | None = None

    def add(self, reason: Reason, channels: frozenset[Channel] | None) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        if channels is None or self.restrict is None:
            self.restrict = None
        else:
            self.restrict |= channels


class Planner:
    """Turns one enriched event into a RoutingPlan against one tenant's directory."""

    def __init__(self, ruleset: RuleSet, view: DirectoryView, doc: dict[str, Any],
                 now: datetime | None = None) -> None:
        self.ruleset = ruleset
        self.now = now or utcnow()  # quiet hours are judged at this instant
        spec = ruleset.events.get(doc["type"])
        self.critical = spec is not None and spec.critical
        self.view = view
        self.doc = doc
        self.subject = doc["subject"]
        self.actor_id = (doc.get("actor") or {}).get("id")
        self.candidates: dict[tuple[ReceiverKind, str], _Candidate] = {}
        self.plan = RoutingPlan(doc["id"], doc["type"], [], timing=ruleset.timing(doc["type"]),
                                folds=ruleset.folds(doc["type"]))
        self.rules: list[Rule] = []
        self._default_prefs: tuple[ChannelPrefs, str] | None = None
        self._tenant_language: str | None = None

    # -- selectors ---------------------------------------------------------------

    def select(self, rule: Rule) -> None:
        excluded = self._excluded(rule)
        for selector in rule.receivers:
            reason = Reason(rule.id, selector.label())
            found = self._resolve(selector)
            kept = 0
            for kind, rid, sub in found:
                if rid in excluded and kind != ReceiverKind.CODE_USER:
                    continue
                kept += 1
                cand = self.candidates.get((kind, rid))
                if cand is None:
                    cand = self.candidates[(kind, rid)] = _Candidate(kind, rid, subscription=sub)
                cand.add(reason, rule.channels)
            if not kept:
                why = (f"found only {', '.join(sorted(excluded))}, whom the rule leaves out "
                       f"(except: {', '.join(sorted(rule.excludes))})") if found else (
                    self._why_nobody(selector))
                self.plan.nobody.append(Nobody(rule.id, selector.label(), why))

    def _excluded(self, rule: Rule) -> set[str]:
        names = {"actor": self.actor_id, "creator": self.subject.get("creator_id")}
        return {v for k, v in names.items() if k in rule.excludes and v}

    def _resolve(self, selector: Selector) -> Iterable[tuple[ReceiverKind, str, Any]]:
        resolvers = {**self._resolvers(), "template_group": self._template_group,
                     "customer_org": self._customer_org}
        resolver = resolvers.get(selector.kind)
        if resolver is not None:
            users = self.view.users(resolver(selector))
            return [(KINDS[u.kind], uid, None) for uid, u in users.items()]
        return [(ReceiverKind.CODE_USER, sub.id, sub)
                for sub in self.view.subscriptions(self.subject["kind"], self.subject["id"])]

    def _why_nobody(self, selector: Selector) -> str:
        """Why a selector found nobody, in words; asked only when it did (the view's
        answers are memoised, so this costs no query the selector did not ask)."""
        why = nobody_reason(selector, self.subject, self.view)
        kind, sid = self.subject["kind"], self.subject["id"]
        if selector.kind in SUBJECT_SELECTORS and self.view.subject(kind, sid) is None:
            why += f" (the directory does not know {kind} {sid})"
        return why

    def wanted_users(self, rules: list[Rule]) -> list[str]:
        """Every user id the selectors of these rules name (to load users in bulk)."""
        wanted: list[str] = []
        for rule in rules:
            for selector in rule.receivers:
                if selector.kind == "template_group":
                    wanted += self._group_members(selector, note=False)
                elif selector.kind not in ("subscribers", "customer_org"):
                    resolver = self._resolvers().get(selector.kind)
                    wanted += list(resolver(selector)) if resolver else []
                elif selector.kind == "customer_org":
                    wanted += self._customer_org(selector)
        return wanted

    def _resolvers(self) -> dict[str, Callable[[Selector], Iterable[str]]]:
        return {
            "creator": lambda _s: [self.subject["creator_id"]] if self.subject.get(
                "creator_id") else [],
            "participants": lambda _s: self.subject.get("participants", []),
            "role": lambda s: self.view.role_members(s.args),
            "users": lambda s: list(s.args),
        }

    def _group_members(self, selector: Selector, note: bool = True) -> list[str]:
        template_id = self.subject.get("template_id")
        if not template_id:
            if note:
                self.plan.notes.append(f"{selector.label()}: the subject has no template")
            return []
        found: list[str] = []
        for submodule in selector.args:
            pick = self.view.pick_group(template_id, Submodule(submodule), self.subject.get("group"))
            if note:
                self.plan.notes.append(f"{submodule} of template {template_id}: {pick.note}")
            if pick.group_id:
                found += self.view.group_members(template_id, submodule, pick.group_id)
        return found

    def _template_group(self, selector: Selector) -> list[str]:
        found = self._group_members(selector)
        employees = self.view.users(found)
        return [u for u in found if u in employees and employees[u].kind == UserKind.EMPLOYEE]

    def _customer_org(self, _selector: Selector) -> list[str]:
        org = self.subject.get("customer_org_id")
        return self.view.org_customers(org) if org else []

    # -- settings filter -----------------------------------------------------------

    def settle(self) -> None:
        users = self.view.users(c.id for c in self.candidates.values()
                                if c.kind != ReceiverKind.CODE_USER)
        settings = self.view.settings(users)
        with_push = self.view.has_push(users)
        alike: dict[tuple[Any, ...], Settlement] = {}
        for cand in self.candidates.values():
            if cand.kind == ReceiverKind.CODE_USER:
                self._settle_code_user(cand)
                continue
            user, row, has_push = users[cand.id], settings.get(cand.id), cand.id in with_push
            if row is None:  # users without settings rows are alike but for who they are
                key = (cand.kind, None if cand.restrict is None else frozenset(cand.restrict),
                       tuple(map(id, cand.reasons)), user.active, user.id == self.actor_id,
                       bool(user.email), has_push, user.language)
                settled = alike.get(key)
                if settled is None:
                    settled = alike[key] = self._settlement(cand, user, None, has_push)
            else:
                settled = self._settlement(cand, user, row, has_push)
            self._record(cand, user, settled)

    def _record(self, cand: _Candidate, user: DirectoryUser, settled: Settlement) -> None:
        if settled.drops:
            self.plan.drops.append((cand.kind, cand.id, settled.drops))
        like = settled.receiver
        if like is not None:
            self.plan.receivers.append(PlannedReceiver(
                like.kind, user.id, user.name, like.language, like.channels, like.strategy,
                like.reasons, like.prefs_source, user.email, like.deferred, like.quiet,
                like.cadence))

    def _settlement(self, cand: _Candidate, user: DirectoryUser, row: Any | None,
                    has_push: bool) -> Settlement:
        """How the settings filter treats this user; `row` is their settings row
        (router.directory.audience SETTINGS_COLUMNS), None for the defaults."""
        if not user.active:
            return Settlement((Drop("the user is inactive", "directory: active = false"),))
        if cand.kind == ReceiverKind.CUSTOMER and row is not None and not row.customer_notifications:
            return Settlement((Drop("customer notifications are off",
                                    "customer_notifications = off"),))
        prefs, source = self._prefs(row.advanced if row is not None else None)
        origin = Origin.ME if self.actor_id == user.id else Origin.OTHERS
        if origin not in prefs.origin:
            return Settlement((Drop(f"the event's origin is '{origin}', which {source} excludes",
                                    f"{source}: origin = {sorted(str(o) for o in prefs.origin)}"),))
        restrict = None if cand.restrict is None else frozenset(cand.restrict)
        channels, drops = _channels(restrict, prefs.channels, user, row, has_push)
        if not channels:
            return Settlement((*drops, Drop("no channel is left", "see the dropped channels")))
        deferred, quiet = self._quiet(user, row, channels)
        cadence = (self.view.cadence(user, row, self.now)
                   if Channel.EMAIL in channels and not self.critical else None)
        return Settlement(drops, PlannedReceiver(
            cand.kind, "", "", self._language(user.language), channels, prefs.strategy,
            cand.reasons, source, None, deferred, quiet, cadence))

    def _quiet(self, user: Any, row: Any | None, channels: list[Channel]
               ) -> tuple[Deferral | None, str]:
        """Push and email wait for the end of the user's quiet hours, unless the event
        type is critical."""
        waiting = [str(c) for c in channels if c in DEFERRABLE]
        found = self.view.deferral(user, row, self.now) if waiting else None
        if found is None:
            return None, ""
        if self.critical:
            return None, f"critical event type: quiet hours (until {found.label}) bypassed"
        return found, found.note(", ".join(waiting))

    def _prefs(self, advanced: dict[str, Any] | None) -> tuple[ChannelPrefs, str]:
        if advanced:
            return effective_prefs(advanced, self.doc["type"], self.ruleset)
        if self._default_prefs is None:  # the same for everyone without advanced rows
            self._default_prefs = effective_prefs(None, self.doc["type"], self.ruleset)
        return self._default_prefs

    def _settle_code_user(self, cand: _Candidate) -> None:
        sub = cand.subscription
        assert sub is not None
        if self.subject.get("visibility") == Visibility.INTERNAL:
            self.plan.drops.append((cand.kind, cand.id, (Drop(
                "the subject is internal: code users never hear about it",
                "subject visibility = internal"),)))
            return
        kept: list[Channel] = []
        drops: list[Drop] = []
        for raw in sub.channels:
            channel = Channel(raw)
            if channel not in CODE_USER_CHANNELS:
                continue
            if cand.restrict is not None and channel not in cand.restrict:
                drops.append(Drop(f"the matching rules allow only {sorted(cand.restrict)}",
                                  "rule channels", channel))
                continue
            kept.append(channel)
        if not kept:
            drops.append(Drop("no channel is left", "subscription channels"))
        if drops:
            self.plan.drops.append((cand.kind, cand.id, tuple(drops)))
        if not kept:
            return
        language = sub.language or self.subject.get("language")
        self.plan.receivers.append(PlannedReceiver(
            cand.kind, sub.id, "", self._language(language), kept, Strategy.ALL, cand.reasons,
            "code-user subscription", sub.email))

    def _language(self, preferred: str | None) -> str:
        if preferred:
            return preferred
        if self._tenant_language is None:
            tenant = self.view.tenant_row()
            self._tenant_language = (tenant.default_language if tenant else None) or "en"
        return self._tenant_language


SUBJECT_SELECTORS = ("template_group", "creator", "participants", "customer_org", "subscribers")


def nobody_reason(selector: Selector, subject: dict[str, Any], view: DirectoryView) -> str:
    """Why ``selector`` found nobody for this (enriched) subject."""
    args = ", ".join(selector.args)
    if selector.kind == "template_group":
        template_id = subject.get("template_id")
        if not template_id:
            return "the subject has no template"
        return "; ".join(view.group_emptiness(template_id, Submodule(submodule), subject.get("group"))
                         for submodule in selector.args)
    if selector.kind == "creator":
        creator = subject.get("creator_id")
        return (f"the creator {creator} is not in the directory" if creator
                else "the subject names no creator")
    if selector.kind == "participants":
        return ("the subject has no participants" if not subject.get("participants")
                else "none of its participants is in the directory")
    if selector.kind == "role":
        return f"no user has the role {args}"
    if selector.kind == "users":
        return f"none of the users {args} is in the directory"
    if selector.kind == "customer_org":
        org = subject.get("customer_org_id")
        return (f"the organisation {org} has no customers in the directory" if org
                else "the subject belongs to no customer organisation")
    return f"no code user signed up for {subject['kind']} {subject['id']}"


# why a user's channel is dropped: (reason, setting), checked in this order
PUSH_OFF = ("the push switch is off", "push = off")
NO_PUSH_TARGET = ("no browser subscription or app device registered", "push registrations")
EMAIL_OFF = ("the email switch is off", "email = off")
NO_EMAIL = ("the user has no email address", "directory: email")


def _channels(restrict: frozenset[Channel] | None, wanted: Iterable[Channel],
              user: DirectoryUser, row: Any | None, has_push: bool
              ) -> tuple[list[Channel], tuple[Drop, ...]]:
    """The wanted channels a user keeps, and why each other one is dropped."""
    kept: list[Channel] = []
    drops: list[Drop] = []
    for channel in wanted:
        if restrict is not None and channel not in restrict:
            drops.append(Drop(f"the matching rules allow only {sorted(restrict)}",
                              "rule channels", channel))
            continue
        blocked = _blocked(channel, user, row, has_push)
        if blocked:
            drops.append(Drop(*blocked, channel))
            continue
        kept.append(channel)
    return kept, tuple(drops)


def _blocked(channel: Channel, user: DirectoryUser, row: Any | None, has_push: bool
             ) -> tuple[str, str] | None:
    if channel == Channel.PUSH:
        if row is not None and not row.push:
            return PUSH_OFF
        if not has_push:
            return NO_PUSH_TARGET
    elif channel == Channel.EMAIL:
        if row is not None and not row.email:
            return EMAIL_OFF
        if not user.email:
            return NO_EMAIL
    return None


def plan_event(event: Event, view: DirectoryView, engine: RuleEngine,
               now: datetime | None = None) -> RoutingPlan:
    """Route one event: which rules fire, who receives it, on which channels, and why."""
    with engine.pinned() as rules:
        doc = enrich(event, view)
        ruleset = rules.ruleset
        fired = set(rules.match(doc))
        plan = plan_matched(doc, [r for r in ruleset.rules if r.id in fired], ruleset, view, now)
    plan.rules_version = rules.version
    return plan


def plan_many(events: list[Event], view: DirectoryView, rules: PinnedRules,
              now: datetime | None = None) -> list[tuple[dict[str, Any], RoutingPlan] | Exception]:
    """Route a batch of one tenant's events, asking the directory each question once
    for the whole batch (quiet hours judged at ``now``, default: the clock). An event
    that cannot be planned yields its exception."""
    now = now or utcnow()
    view.prefetch_subjects((e.subject.kind.value, e.subject.id) for e in events)
    ruleset = rules.ruleset
    planners: list[Planner | Exception] = []
    for event in events:
        try:
            doc = enrich(event, view)
            fired = set(rules.match(doc))
            planner = Planner(ruleset, view, doc, now)
            planner.plan.rules_version = rules.version
            planner.rules = [r for r in ruleset.rules if r.id in fired]
            planners.append(planner)
        except Exception as exc:  # noqa: BLE001 - one bad event must not sink the batch
            planners.append(exc)
    wanted = [u for p in planners if isinstance(p, Planner) for u in p.wanted_users(p.rules)]
    view.settings(view.users(wanted))
    view.has_push(wanted)
    view.users(p.actor_id for p in planners if isinstance(p, Planner) and p.actor_id)
    return [p if isinstance(p, Exception) else _finish(p) for p in planners]


def fill_actor(doc: dict[str, Any], view: DirectoryView) -> None:
    """The directory user's avatar (and name) where the event's actor left them empty."""
    actor = doc.get("actor")
    user = view.users([actor["id"]]).get(actor["id"]) if actor and actor.get("id") else None
    if actor is None or user is None:
        return
    actor["avatar_url"] = actor.get("avatar_url") or user.avatar_url or ""
    actor["name"] = actor.get("name") or user.name or ""


def _finish(planner: Planner) -> tuple[dict[str, Any], RoutingPlan] | Exception:
    try:
        fill_actor(planner.doc, planner.view)
        return planner.doc, plan_rules(planner, planner.rules)
    except Exception as exc:  # noqa: BLE001 - reported per event by the caller
        return exc


def _note_cancels(planner: Planner) -> None:
    cancelled = planner.ruleset.cancels(planner.doc["type"])
    if cancelled:
        planner.plan.notes.append(f"cancels the pending delayed deliveries of "
                                  f"{', '.join(cancelled)} on the same subject")


def plan_rules(planner: Planner, rules: list[Rule]) -> RoutingPlan:
    planner.plan.matched_rules = [{"id": r.id, "description": r.description} for r in rules]
    _note_cancels(planner)
    for rule in rules:
        planner.select(rule)
    planner.settle()
    return planner.plan


def plan_matched(doc: dict[str, Any], rules: list[Rule], ruleset: RuleSet,
                 view: DirectoryView, now: datetime | None = None) -> RoutingPlan:
    planner = Planner(ruleset, view, doc, now)
    planner.plan.matched_rules = [{"id": r.id, "description": r.description} for r in rules]
    _note_cancels(planner)
    for rule in rules:
        planner.select(rule)
    planner.settle()
    return planner.plan
