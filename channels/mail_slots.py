"""Mail bodies rendered once per batch group, with the per-receiver values put in after.

The mails of one event in one language differ only in a few values: the unsubscribe
link, the receiver's name and a code user's access link (its "slots"). A group of such
mails is rendered once with a random marker in each slot and each mail gets its own
values in the markers' places. That is exact only for a template that prints a slot as
it is or tests it for truth (the group key carries each slot's truth), and never
captures, filters, compares or passes it on; ``prints_slots_plainly`` checks a template,
and every template it extends, for exactly that. Any other template is rendered per mail.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from jinja2 import Environment, nodes
from markupsafe import escape

NAMES = frozenset({"unsubscribe_url", "link"})  # top-level slots; receiver.name is the third
RECEIVER = "receiver"
MARK = f"hs{secrets.token_hex(8)}"  # letters and digits: autoescaping leaves it as it is
CAPTURING = (nodes.AssignBlock, nodes.Macro, nodes.CallBlock, nodes.FilterBlock)
UNSEEN = (nodes.Include, nodes.Import, nodes.FromImport)  # other templates, not checked


def slot_values(ctx: dict[str, Any]) -> dict[str, Any]:
    return {**{name: ctx[name] for name in NAMES}, "name": ctx[RECEIVER]["name"]}


def group_key(etype: str, ctx: dict[str, Any]) -> str | None:
    """The same for mails whose bodies differ only in their slots' values; None when a
    slot holds something other than text (rendered per mail)."""
    values = slot_values(ctx)
    if any(v and not isinstance(v, str) for v in values.values()):
        return None
    truth = {k: bool(v) or v for k, v in values.items()}  # "" and None print differently
    shared = {**{k: v for k, v in ctx.items() if k not in NAMES},
              "receiver": {**ctx[RECEIVER], "name": truth["name"]}}
    return repr((etype, shared, [truth[k] for k in NAMES]))


def marked(ctx: dict[str, Any]) -> dict[str, Any]:
    """The context with a marker in each slot that holds text (an empty one stays)."""
    out = {**ctx, **{n: f"{MARK}{n}{MARK}" if ctx[n] else ctx[n] for n in NAMES}}
    name = ctx[RECEIVER]["name"]
    out[RECEIVER] = {**ctx[RECEIVER], "name": f"{MARK}name{MARK}" if name else name}
    return out


def fill(body: str, ctx: dict[str, Any], html: bool) -> str:
    """A body rendered from ``marked`` context, with this mail's slot values in place."""
    for key, value in slot_values(ctx).items():
        if value:
            body = body.replace(f"{MARK}{key}{MARK}", str(escape(value)) if html else value)
    return body


def prints_slots_plainly(env: Environment, name: str) -> bool:
    """Whether the template, and each one it extends, only prints a slot as it is or
    tests its truth (see the module's docstring)."""
    assert env.loader is not None
    tree = env.parse(env.loader.get_source(env, name)[0])
    parents = [node.template for node in tree.find_all(nodes.Extends)]
    names = [p.value for p in parents if isinstance(p, nodes.Const)]
    if len(names) < len(parents):  # a parent chosen at render time
        return False
    return _plain(tree, "", False) and all(prints_slots_plainly(env, n) for n in names)


def _plain(node: nodes.Node, where: str, captured: bool) -> bool:
    """``where`` a node stands: "print" (a value an Output writes), "test" (its truth is
    tested) or "" (anything else)."""
    if _is_slot(node):
        return where == "test" or (where == "print" and not captured)
    if _is_receiver(node):  # the receiver itself: a dict, true for every mail of the group
        return where == "test"
    if isinstance(node, nodes.Getattr) and _is_receiver(node.node):
        return True  # receiver.kind: part of the group key
    if isinstance(node, UNSEEN):
        return False
    captured = captured or isinstance(node, CAPTURING)
    return all(_plain(child, _where(node, field, where), captured)
               for field, child in _children(node))


def _where(parent: nodes.Node, field: str, where: str) -> str:
    if isinstance(parent, nodes.Output):
        return "print"
    if isinstance(parent, (nodes.If, nodes.CondExpr)) and field == "test":
        return "test"
    if isinstance(parent, (nodes.And, nodes.Or, nodes.Not)) and where == "test":
        return "test"
    return ""


def _children(node: nodes.Node) -> Iterator[tuple[str, nodes.Node]]:
    for field, value in node.iter_fields():
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, nodes.Node):
                yield field, child


def _is_slot(node: nodes.Node) -> bool:
    if isinstance(node, nodes.Name):
        return node.name in NAMES and node.ctx == "load"
    return isinstance(node, nodes.Getattr) and node.attr == "name" and _is_receiver(node.node)


def _is_receiver(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == RECEIVER and node.ctx == "load"
