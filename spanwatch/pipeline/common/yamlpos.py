"""YAML with positions: every error about a rule file or the worker's configuration names
``file:line:column``.

:func:`load_with_positions` returns plain Python data plus a map from a path of keys and
indexes (``("groups", 0, "rules", 2, "for")``) to the 1-based line and column of that node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass
class Located:
    file: str
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_) -> str:
        """``file:line:col`` of the closest node on ``path`` that has a position."""
        p = tuple(path)
        while p and p not in self.positions:
            p = p[:-1]
        line, col = self.positions.get(p, (1, 1))
        return f"{self.file}:{line}:{col}"


class YamlError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


def load_with_positions(text: str, file: str) -> Located:
    out = Located(file, None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:  # scalars are constructed here: "=" alone is a YAML error too
            out.data = _build(node, (), out.positions)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        raise YamlError(f"{where}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"{file}: invalid YAML: {exc}") from None
    return out


def _build(node: yaml.Node, path: Path_, pos: dict[Path_, tuple[int, int]]) -> Any:
    pos[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else f"<{key_node.tag}>"
            )
            out[key] = _build(value_node, (*path, key), pos)
            pos[(*path, key)] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            pos[(*path, key, "__key__")] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, (*path, i), pos) for i, v in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    finally:
        loader.dispose()
