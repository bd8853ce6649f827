"""Label matchers in the form an Alertmanager user already writes.

``severity="critical"``, ``model!="gpt-4o"``, ``service=~"chat-.*"``, ``team!~"infra|db"``;
regexes are anchored (they match the whole value), as in Prometheus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        m = _MATCHER.match(text)
        if not m:
            raise ValueError(
                f'bad matcher {text!r}: use name="value", name!="value", '
                'name=~"regex" or name!~"regex"'
            )
        name, op, raw = m.groups()
        value = raw.replace('\\"', '"').replace("\\\\", "\\")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regex in matcher {text!r}: {exc}") from None
        return cls(name, op, value)

    def matches(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.name, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = re.fullmatch(self.value, v) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matchers(items: Any) -> tuple[Matcher, ...]:
    """A list of matcher strings, or a mapping ``{label: value}`` (equality)."""
    if isinstance(items, dict):
        return tuple(Matcher(str(k), "=", str(v)) for k, v in items.items())
    if not isinstance(items, list):
        raise ValueError("matchers must be a list of 'name=\"value\"' strings or a mapping")
    return tuple(Matcher.parse(str(i)) for i in items)


def all_match(matchers: tuple[Matcher, ...], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
