"""Silences: matchers with a start and an end; a silenced alert is recorded, not notified."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from .matchers import Matcher, parse_matchers


@dataclass
class Silence:
    id: str
    matchers: list[str]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""

    @classmethod
    def create(
        cls,
        matchers: list[str],
        starts_at: float,
        ends_at: float,
        created_by: str = "",
        comment: str = "",
    ) -> Silence:
        parse_matchers(matchers)  # ValueError with the bad matcher
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")
        return cls(uuid.uuid4().hex[:12], list(matchers), starts_at, ends_at, created_by, comment)

    def parsed(self) -> tuple[Matcher, ...]:
        return parse_matchers(self.matchers)

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.parsed())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Silence:
        return cls(**d)
