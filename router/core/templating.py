"""The sandboxed Jinja2 environment every text and mail template renders in, with
Herald's filters (``clip``, ``actor_name``). Templates ship in ``channels/templates``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import soft_str

TEMPLATES = Path(__file__).resolve().parents[2] / "channels" / "templates"


@jinja2.pass_environment
def clip(env: jinja2.Environment, value: Any, length: int) -> str:
    """``value`` on one line, whitespace runs collapsed, cut to ``length`` with an ellipsis."""
    return str(env.call_filter("truncate", " ".join(soft_str(value).split()), [length, True, "…", 0]))


@jinja2.pass_environment
def actor_name(env: jinja2.Environment, actor: Any, length: int = 32) -> str:
    """The actor's name for a sentence ("" when there is no actor or name), clipped."""
    name = env.getattr(actor, "name") if actor else None
    return clip(env, name or "", length)


FILTERS = {"clip": clip, "actor_name": actor_name}


def environment(autoescape: bool = False, root: Path = TEMPLATES) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(root)),
        autoescape=jinja2.select_autoescape(["html"]) if autoescape else False,
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # templates ship with the code: no stat() before every render; a restart reloads
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env
