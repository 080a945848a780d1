"""Safe YAML loading that remembers where every value came from.

PyYAML's ``compose`` gives nodes with ``start_mark``; we build plain Python data
(never objects: only the safe scalar constructors run) plus a map from each
value's path to its (line, column), and report duplicate keys, which
``safe_load`` would silently collapse. Anchors and aliases are refused while the
document is composed, before anything is expanded: nine levels of aliased lists
(a "billion laughs" file) would otherwise build a tree of a billion values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import yaml

from router.core.errors import Problem

Path = tuple[str | int, ...]
MAX_FILE_BYTES = 1 << 20  # 1 MiB: each shipped rule file is under 5 KiB
SAFE_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap"}


ALIASES_REFUSED = ("YAML anchors and aliases (&name, *name) are not allowed in rule files; "
                   "write the value out")


class _AliasRefused(yaml.composer.ComposerError):
    pass


class _PlainLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing the first anchor or alias it meets."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AliasRefused(None, None, ALIASES_REFUSED, event.start_mark)
        return super().compose_node(parent, index)


@dataclass
class Located:
    """Loaded YAML data plus the position of every path in it."""

    data: Any
    file: str
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def problem(self, path: Path, message: str) -> Problem:
        line, column = self.where(path)
        return Problem(message=message, file=self.file, line=line, column=column,
                       path=".".join(str(p) for p in path))

    def where(self, path: Path) -> tuple[int, int]:
        for end in range(len(path), -1, -1):
            if path[:end] in self.positions:
                return self.positions[path[:end]]
        return (1, 1)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[Path, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in SAFE_TAGS:
            self._add(node, f"YAML: could not determine a constructor for the tag {node.tag!r} "
                            "(rule files hold plain data only)")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalars.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self._scalars.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                self._add(key_node, f"mapping key must be a plain value, got {key!r}")
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                self._add(key_node, f"duplicate key {key!r} (YAML would keep only the last)")
            result[key] = self.build(value_node, path + (key,))
            # point at the key: "line:col" of `field: value` is where the field starts
            self.positions[path + (key,)] = (key_node.start_mark.line + 1,
                                             key_node.start_mark.column + 1)
        return result

    def _add(self, node: yaml.Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(message, file=self.file, line=mark.line + 1,
                                     column=mark.column + 1))


def load_located(text: str, file: str) -> tuple[Located | None, list[Problem]]:
    """Parse YAML text; return the data with positions, or the syntax problems."""
    try:
        node = yaml.compose(text, Loader=_PlainLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        refused = isinstance(exc, _AliasRefused)
        message = ALIASES_REFUSED if refused else f"YAML syntax: {exc.problem or exc.context}"
        return None, [Problem(message, file=file, line=line, column=column)]
    except yaml.YAMLError as exc:
        return None, [Problem(f"YAML error: {exc}", file=file, line=1, column=1)]
    if node is None:
        return Located(data={}, file=file), []
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, [Problem(f"YAML: {exc.problem}", file=file, line=line, column=column)]
    return Located(data=data, file=file, positions=builder.positions), builder.problems


def read_limited(file: FilePath, limit: int = MAX_FILE_BYTES) -> tuple[str | None, list[Problem]]:
    """The UTF-8 text of a file of at most `limit` bytes (never more is read), or why not."""
    with file.open("rb") as stream:
        raw = stream.read(limit + 1)
    if len(raw) > limit:
        return None, [Problem(f"file is larger than the limit of {limit:,} bytes for a YAML file "
                              "(split it into several files)", file=str(file), line=1, column=1)]
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        return None, [Problem(f"not UTF-8 text: {exc.reason} at byte {exc.start}",
                              file=str(file), line=1, column=1)]


def load_located_file(file: FilePath, limit: int = MAX_FILE_BYTES
                      ) -> tuple[Located | None, list[Problem]]:
    """Read and parse one YAML file of at most `limit` bytes (never more is read)."""
    text, problems = read_limited(file, limit)
    if text is None:
        return None, problems
    return load_located(text, str(file))
