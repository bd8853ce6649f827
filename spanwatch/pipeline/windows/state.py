"""The merge side of the scale-out windows: per-series state at its owner.

The series owner (:class:`SeriesState`, one per series, stored in a faust table
co-partitioned with the partials topic) merges partials idempotently (a partial whose source
offset was already applied is skipped, so at-least-once redelivery never counts twice) and
closes a window once every source partition's watermark has passed its end plus the allowed
lateness. Merging is exact and order-independent, so one worker and N workers close
identical windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clusters.prompts import ClusterModel
from ..common.durations import NS
from ..tokens.blackhole import Activity, Budgets
from ..tokens.burn import TokenCounts
from .partial import AGGREGATES, Partial
from .spec import WindowSpec, parse_window_id


@dataclass
class ClosedWindow:
    series: str
    spec: WindowSpec
    start_ns: int
    aggregate: Any  # SignalAggregate | TokenCounts | EngineAggregate | ClusterSamples
    extra: dict[str, Any] | None = None  # fields the owner adds at close (prompt clusters)

    def to_record(self, labels: dict[str, str]) -> dict[str, Any]:
        """The ``spanwatch.metrics`` or ``spanwatch.tokens`` record (docs/SCHEMAS.md)."""
        size_s = self.spec.size_ns / NS
        if isinstance(self.aggregate, TokenCounts):
            head: dict[str, Any] = {"type": "window", "entity": labels}
        else:
            head = {"series": labels}
        return {
            **head,
            "window": {
                "name": self.spec.name,
                "start_ns": self.start_ns,
                "end_ns": self.start_ns + self.spec.size_ns,
                "size_s": size_s,
                "step_s": self.spec.step_ns / NS,
            },
            **self.aggregate.result(size_s),
            **(self.extra or {}),
        }


@dataclass
class SeriesState:
    """Merge side: open windows of one series, applied offsets, closed horizon."""

    windows: dict[str, Any] = field(default_factory=dict)  # window id -> aggregate of ``kind``
    applied: dict[str, int] = field(default_factory=dict)  # source partition -> last offset
    closed: dict[str, int] = field(default_factory=dict)  # spec name -> closed up to (end ns)
    late_after_close: int = 0
    kind: str = "signals"
    activity: Activity | None = None  # traces and sessions (token black holes)
    model: ClusterModel | None = None  # an application's prompt clusters (kind "clusters")

    def admit(self, partial: Partial) -> str:
        """``new`` (every source offset it covers is newer than those applied), ``duplicate``
        (none is: a redelivery) or ``overlap`` (a range straddling the last applied offset:
        never made by one sender, see pipeline.windows.coalesce; applying it would count some
        messages twice)."""
        last = self.applied.get(str(partial.source), -1)
        if partial.offset <= last:
            return "duplicate"
        return "overlap" if partial.lo <= last else "new"

    def apply(self, partial: Partial) -> bool:
        """Merge a partial; False when it was not new (:meth:`admit`)."""
        if self.admit(partial) != "new":
            return False
        self.applied[str(partial.source)] = partial.offset
        for wid, agg in partial.windows.items():
            spec, start = parse_window_id(wid)
            if start + spec.size_ns <= self.closed.get(spec.name, 0):
                self.late_after_close += agg.count + agg.late
                continue
            mine = self.windows.get(wid)
            if mine is None:
                mine = self.windows[wid] = AGGREGATES[self.kind]()  # never alias the partial's
            mine.merge(agg)
        return True

    def apply_calls(self, partial: Partial, budgets: Budgets) -> list[dict[str, Any]]:
        """Account a (new) partial's calls; the budgets crossed now, with evidence."""
        if not partial.calls:
            return []
        if self.activity is None:
            self.activity = Activity()
        # one message's calls are sorted here; several messages' come sorted per message
        return self.activity.apply(partial.calls, budgets, ordered=partial.first >= 0)

    def close(self, series: str, low_watermark_ns: int, lateness_ns: int) -> list[ClosedWindow]:
        """Close every window whose end + lateness <= the low watermark, oldest first."""
        done = []
        for wid in list(self.windows):
            spec, start = parse_window_id(wid)
            end = start + spec.size_ns
            if end + lateness_ns <= low_watermark_ns:
                agg = self.windows.pop(wid)
                if self.late_after_close:
                    agg.late += self.late_after_close
                    self.late_after_close = 0
                done.append(ClosedWindow(series, spec, start, agg))
                self.closed[spec.name] = max(self.closed.get(spec.name, 0), end)
        done.sort(key=lambda c: (c.start_ns + c.spec.size_ns, c.spec.size_ns))
        return done

    def to_dict(self) -> dict[str, Any]:
        d = {
            "windows": {k: v.to_dict() for k, v in self.windows.items()},
            "applied": self.applied,
            "closed": self.closed,
            "late_after_close": self.late_after_close,
            "kind": self.kind,
        }
        if self.activity is not None:
            d["activity"] = self.activity.to_dict()
        if self.model is not None:
            d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesState:
        kind = d.get("kind", "signals")
        agg = AGGREGATES[kind]
        act, model = d.get("activity"), d.get("model")
        return cls(
            {k: agg.from_dict(v) for k, v in d["windows"].items()},
            dict(d["applied"]),
            dict(d["closed"]),
            int(d.get("late_after_close", 0)),
            kind,
            Activity.from_dict(act) if act else None,
            ClusterModel.from_dict(model) if model else None,
        )


@dataclass
class Watermarks:
    """Merge side: the latest watermark of every source partition (max wins)."""

    marks: dict[str, int] = field(default_factory=dict)
    sources: int = 0

    def update(self, source: int, watermark_ns: int, sources: int) -> None:
        k = str(source)
        if watermark_ns > self.marks.get(k, 0):
            self.marks[k] = watermark_ns
        self.sources = max(self.sources, sources)

    def low(self) -> int:
        """Lowest watermark over all source partitions; 0 until every one has reported."""
        if not self.sources or len(self.marks) < self.sources:
            return 0
        return min(self.marks.values())


def close_offline(partials: Sequence[Partial], lateness_ns: int = 0) -> list[ClosedWindow]:
    """Merge partials as the series owners would and close every window (end of input).

    The reference the streaming path is compared with, and the core of golden tests.
    """
    states: dict[str, SeriesState] = {}
    for p in partials:
        states.setdefault(p.series, SeriesState(kind=p.kind)).apply(p)
    out: list[ClosedWindow] = []
    for sid in sorted(states):
        out.extend(states[sid].close(sid, 2**62, lateness_ns))
    return out
