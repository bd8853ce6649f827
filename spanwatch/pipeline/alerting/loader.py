"""Load rule files and directories into a validated :class:`RuleSet`, or raise
:class:`RuleError` listing every problem (``file:line:column: message``).

A file with ``groups:`` holds rules; a file with ``route:``/``receivers:`` is the alerting
configuration (at most one). Directories contribute their ``*.yaml``/``*.yml`` files (not
recursively: ``rules/examples/`` is not loaded with ``rules/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import ConfigError
from ..common.yamlpos import Located, YamlError, load_with_positions
from ..windows.golden import DEFAULT_DIMENSIONS
from .routing import DOC_KEYS, AlertingConfig, parse_config
from .rules import Problems, Rule, parse_groups


class RuleError(ConfigError):
    """A rule set is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in alert rules:\n  " + "\n  ".join(problems))


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    config: AlertingConfig = field(default_factory=AlertingConfig)
    files: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, Rule]:
        return {r.name: r for r in self.rules}


def rule_files(paths: list[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml") and x.is_file())
        else:
            out.append(p)
    return out


def load_rules(
    paths: list[str | Path], dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
) -> RuleSet:
    """Every rule and the alerting configuration of ``paths``; :class:`RuleError` lists every
    problem as ``file:line:column: message``. ``dimensions``: the golden-signal series'
    labels (``metrics.dimensions``), which rules may group and match by."""
    problems = Problems(dimensions)
    files = rule_files(paths)
    if not files:
        raise RuleError([f"{', '.join(map(str, paths)) or '(none)'}: no rule files found"])
    docs: list[Located] = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.items.append(f"{f}: cannot read: {getattr(exc, 'strerror', exc)}")
            continue
        try:
            doc = load_with_positions(text, str(f))
        except YamlError as exc:
            problems.items.append(str(exc))
            continue
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            problems.items.append(
                f"{f}:1:1: top level must be a mapping with 'groups' "
                "(rules) or 'route'/'receivers' (alerting configuration)"
            )
            continue
        docs.append(doc)
    seen: dict[str, str] = {}
    rs = RuleSet(files=[str(f) for f in files])
    configs = [d for d in docs if set(d.data) & DOC_KEYS]
    for d in docs:
        if "groups" in d.data:
            if set(d.data) - {"groups"}:
                extra = sorted(set(d.data) - {"groups"}, key=str)
                problems.add(
                    d,
                    (extra[0], "__key__"),
                    f"a rules file holds only 'groups' "
                    f"(found {extra}); routing goes in its own file",
                )
            rs.rules += parse_groups(d, problems, seen)
        elif d not in configs:
            problems.add(d, (), "expected 'groups' (rules) or 'route'/'receivers'")
    if len(configs) > 1:
        problems.items.append(
            f"{configs[1].file}:1:1: a second alerting configuration "
            f"(the first is {configs[0].file})"
        )
    if configs:
        rs.config = parse_config(configs[0], problems)
    if problems.items:
        raise RuleError(sorted(problems.items, key=_position))
    return rs


def _position(line: str) -> tuple[str, int, int]:
    parts = line.split(":", 3)
    try:
        return parts[0], int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return parts[0], 0, 0
