"""Titles, messages and deep links, rendered once per (event, language).

Text templates live in ``channels/templates/texts/<lang>.yaml`` (event type ->
title and message, Jinja2 in a sandbox, so admins may edit them safely). Where
no template exists the event's literal ``data.title`` / ``data.message`` is used,
then the catalogue title.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import yaml

from router.core.errors import ConfigError
from router.core.templating import TEMPLATES, environment

FALLBACK_LANGUAGE = "en"
Triple = tuple[jinja2.Template, jinja2.Template, jinja2.Template | None]  # title, message, digest


@dataclass(frozen=True)
class Texts:
    title: str
    message: str
    digest: str = ""  # a digest's title, "{count}" left for the count ("{count} new messages")


class TextCatalogue:
    """Compiled title/message templates per language, checked at load."""

    def __init__(self, root: Path = TEMPLATES) -> None:
        self.root = root
        self.env = environment(root=root)

    @cached_property
    def templates(self) -> dict[str, dict[str, Triple]]:
        found: dict[str, dict[str, Triple]] = {}
        for file in sorted((self.root / "texts").glob("*.yaml")):
            found[file.stem] = self._load(file)
        return found

    def _load(self, file: Path) -> dict[str, Triple]:
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            return {etype: (self.env.from_string(str(spec.get("title", ""))),
                            self.env.from_string(str(spec.get("message", ""))),
                            self.env.from_string(str(spec["digest"])) if "digest" in spec
                            else None)
                    for etype, spec in raw.items()}
        except (yaml.YAMLError, jinja2.TemplateError, AttributeError) as exc:
            raise ConfigError(f"{file}: cannot load text templates: {exc}") from exc

    def languages(self) -> list[str]:
        return sorted(self.templates)

    def pick_language(self, *preferred: str | None) -> str:
        for lang in preferred:
            if lang and lang in self.templates:
                return lang
            if lang and lang.split("-")[0] in self.templates:
                return lang.split("-")[0]
        return FALLBACK_LANGUAGE

    def render(self, doc: dict[str, Any], language: str, fallback_title: str) -> Texts:
        data = doc.get("data") or {}
        pair = self.templates.get(language, {}).get(doc["type"])
        if pair is None:
            return Texts(str(data.get("title") or fallback_title), str(data.get("message") or ""))
        context = {"event": {"type": doc["type"], "id": doc["id"]}, "data": data,
                   "subject": doc.get("subject", {}), "actor": doc.get("actor")}
        try:
            return Texts(pair[0].render(context).strip(), pair[1].render(context).strip(),
                         pair[2].render(context).strip() if pair[2] is not None else "")
        except jinja2.TemplateError:
            return Texts(str(data.get("title") or fallback_title), str(data.get("message") or ""))


def deep_link(templates: dict[str, str], subject: dict[str, Any]) -> str:
    pattern = templates.get(subject["kind"], "")
    try:
        return pattern.format(id=subject["id"], number=subject.get("number", ""))
    except (KeyError, IndexError, ValueError):
        return pattern
