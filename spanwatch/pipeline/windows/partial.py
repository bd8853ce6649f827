"""What crosses the partials topic: a :class:`Partial` (one source message's contribution to one
series, per window), how it is keyed and which partition owns its series.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..clusters.labels import LabelCounts
from ..clusters.prompts import ClusterSamples
from ..engine.gauges import EngineAggregate
from ..tokens.blackhole import Call
from ..tokens.burn import TokenCounts
from .aggregate import WindowAggregate
from .golden import SignalAggregate


def series_id(key: Sequence[str]) -> str:
    """Stable string id of a series key (the Kafka key and the table key)."""
    return orjson.dumps(list(key)).decode()


AGGREGATES: dict[str, type[WindowAggregate]] = {
    "signals": SignalAggregate,
    "tokens": TokenCounts,
    "engine": EngineAggregate,
    "clusters": ClusterSamples,
    "labels": LabelCounts,
}


@dataclass
class Partial:
    """What one source message contributed to one series (or token entity), per window.

    ``kind`` is ``signals`` (golden signals), ``tokens`` (token accounting; ``calls`` then
    carries compact call records for black-hole detection of traces and sessions),
    ``engine`` (inference-engine gauges, :mod:`pipeline.engine`), ``clusters`` (sampled
    prompt fingerprints, :mod:`pipeline.clusters`) or ``labels`` (judge labels,
    :mod:`pipeline.clusters.labels`).
    """

    series: str
    source: int  # source partition
    offset: int  # source offset (idempotency)
    windows: dict[str, Any]  # window id -> SignalAggregate | TokenCounts
    kind: str = "signals"
    calls: list[Call] = field(default_factory=list)  # per source message, in (time, span) order
    # first source offset of a partial covering several messages (pipeline.windows.coalesce), whose
    # calls are then in message order; -1: the one message at ``offset``
    first: int = -1

    @property
    def lo(self) -> int:
        """The first source offset this partial covers."""
        return self.offset if self.first < 0 else self.first

    def reach(self, offset: int) -> None:
        """Cover a later message of the source partition too: the range grows to
        ``offset`` (from one message, ``first`` becomes the one it covered)."""
        if self.first < 0:
            self.first = self.offset
        self.offset = offset

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "series": self.series,
            "src": self.source,
            "off": self.offset,
            "windows": (
                {k: v.to_wire() for k, v in self.windows.items()}
                if self.kind == "signals"  # values not bucketed yet travel as they are
                else {k: v.to_dict() for k, v in self.windows.items()}
            ),
        }
        if self.kind != "signals":
            d["kind"] = self.kind
        if self.calls:
            d["calls"] = [c.to_list() for c in self.calls]
        if 0 <= self.first < self.offset:
            d["first"] = self.first
        return d

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Partial:
        kind = d.get("kind", "signals")
        agg = AGGREGATES[kind]
        return cls(
            d["series"],
            int(d["src"]),
            int(d["off"]),
            {k: agg.from_dict(v) for k, v in d["windows"].items()},
            kind,
            [Call.from_list(c) for c in d.get("calls", ())],
            int(d.get("first", -1)),
        )


def owner_partition(series: str, partitions: int) -> int:
    """The partials partition that owns a series or entity (stable across processes)."""
    return zlib.crc32(series.encode()) % partitions


def bundles(partials: Sequence[Partial], partitions: int) -> dict[int, bytes]:
    """One message per owner partition: ``{"type": "bundle", "partials": [...]}``."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for p in partials:
        groups.setdefault(owner_partition(p.series, partitions), []).append(p.to_dict())
    return {part: orjson.dumps({"type": "bundle", "partials": ps}) for part, ps in groups.items()}


def token_entity_id(kind: str, entity: str) -> str:
    return orjson.dumps(["@tokens", kind, entity]).decode()
