"""Every default has one home: the settings models (pydantic, ``SettingsModel``). A stage's
own class may take a value from its section, but must not write the same default again
(``sample_rate`` was 0.1 in ``JudgeConfig`` and 1.0 in ``JudgeSettings``; the black-hole
budgets were written twice, the alert manager's limits too)."""

from __future__ import annotations

import ast
import importlib
import inspect
import operator
import pkgutil
from typing import Any

from pydantic_core import PydanticUndefined

import spanwatch.pipeline
from spanwatch.pipeline.common.settings import SettingsModel

TRIVIAL = (None, True, False, 0, 0.0, "", ())
ARITHMETIC: dict[type, Any] = {
    ast.Mult: operator.mul,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Pow: operator.pow,
}


def _classes() -> list[type]:
    out = []
    for info in pkgutil.walk_packages(spanwatch.pipeline.__path__, "spanwatch.pipeline."):
        mod = importlib.import_module(info.name)
        out += [
            c for c in vars(mod).values() if inspect.isclass(c) and c.__module__ == mod.__name__
        ]
    return out


def _literal_defaults(cls: type) -> dict[str, Any]:
    """Field and ``__init__`` defaults written as literals in the class's own source."""
    try:
        tree = ast.parse(inspect.getsource(cls).strip())
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0]
    assert isinstance(body, ast.ClassDef)
    out: dict[str, Any] = {}

    def literal(node: ast.expr | None) -> Any:
        if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
            left, right = literal(node.left), literal(node.right)
            if PydanticUndefined in (left, right):
                return PydanticUndefined
            return ARITHMETIC[type(node.op)](left, right)  # 16 * 1024 * 1024
        try:
            return ast.literal_eval(node) if node is not None else PydanticUndefined
        except ValueError:
            return PydanticUndefined  # a name or a call: it refers to a home elsewhere

    for stmt in body.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            out[stmt.target.id] = literal(stmt.value)
        elif isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            args = stmt.args
            positional = args.args[len(args.args) - len(args.defaults) :]
            for a, d in zip(positional, args.defaults, strict=True):
                out[a.arg] = literal(d)
            for a, kd in zip(args.kwonlyargs, args.kw_defaults, strict=True):
                out[a.arg] = literal(kd)
    return {k: v for k, v in out.items() if v is not PydanticUndefined}


def test_a_default_is_written_once() -> None:
    classes = _classes()
    homes: dict[str, list[tuple[str, Any]]] = {}
    for c in classes:
        if issubclass(c, SettingsModel):
            for name, field in c.model_fields.items():
                if field.default is not PydanticUndefined:
                    homes.setdefault(name, []).append((c.__qualname__, field.default))
    twice = [
        f"{c.__module__}.{c.__qualname__}.{name} = {value!r}, also {home}.{name}"
        for c in classes
        if not issubclass(c, SettingsModel)
        for name, value in _literal_defaults(c).items()
        for home, default in homes.get(name, ())
        if value == default and value not in TRIVIAL
    ]
    assert not twice, "\n".join(twice)


def test_the_check_finds_a_default_written_twice() -> None:
    """The scan itself: a class repeating a settings default is caught."""

    class Twice:
        max_llm_calls: int = 50

    assert _literal_defaults(Twice) == {"max_llm_calls": 50}
