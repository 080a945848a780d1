"""Safe YAML loading that remembers where every value came from.

PyYAML's ``compose`` gives nodes with ``start_mark``; we build plain Python data
(never objects: only the safe scalar constructors run) plus a map from each
value's path to its (line, column), and report duplicate keys, which
``safe_load`` would silently collapse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from router.errors import Problem

Path = tuple[str | int, ...]
SAFE_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap"}


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
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"YAML syntax: {exc.problem or exc.context}"
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
