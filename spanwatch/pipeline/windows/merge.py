"""Merge side of the scale-out windows: partials in, closed windows out, state in memory.

The owner of a partials partition keeps every series' :class:`~pipeline.windows.state.SeriesState`
of that partition in memory and writes the states that changed to its durable store (the
worker's ``series`` table) only every ``flush_interval_s``, not once per partial. Crash
safety comes from the input, not from writing every change: the partials topic is the one
ordered log every owner applies, and the worker commits its offsets only up to the last flush
(the agent asks its consumer to hold the rest back). A successor restores the flushed states
and applies the partials after the flush again, skipping those whose source offset a state
already holds; every owner that applies the same log in order reaches the same state, so
versions by partials offset order the writes (``agents.tables.VersionedTable``).

After a rebalance (:meth:`MergeStage.reset`) a partition is loaded again from the store: what
was applied since its last flush is applied again from the partials topic.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..clusters.prompts import ClusterModel, ClusterSettings
from ..common.clock import Timer
from ..common.versions import VERSION, next_version, version_of
from ..tokens.blackhole import Budgets
from ..tokens.burn import MAX_TRACKED, TOP_N, top_consumers
from .golden import SeriesKeyer
from .partial import AGGREGATES, Partial
from .state import ClosedWindow, SeriesState, Watermarks


def _wm_key(part: int) -> str:
    return f"__wm__:{part}"


@dataclass
class PartitionState:
    """What the merge holds of one partials partition."""

    states: dict[str, SeriesState]
    marks: Watermarks
    versions: dict[str, int | None] = field(default_factory=dict)  # of the stored values
    dirty: set[str] = field(default_factory=set)  # changed since the last flush
    gone: set[str] = field(default_factory=set)  # forgotten since the last flush
    marks_dirty: bool = False
    last_close: int = 0
    flushed_at: float = 0.0


@dataclass
class MergeStage:
    """Applies partials and watermarks per partials partition; closes windows (module docs)."""

    store: MutableMapping[Any, Any]
    lateness_ns: int
    min_step_ns: int  # windows close at most once per this much watermark progress
    idle_ns: int  # quiet traces and sessions (no open window) are forgotten after this
    budgets: Mapping[str, Budgets]  # entity kind -> black-hole budgets
    max_tracked: int = MAX_TRACKED  # traces and sessions with black-hole activity, per worker
    flush_interval_s: float = 1.0
    # series kinds whose windows wait longer than ``lateness_ns`` (engine gauges: scraped and
    # exported in batches)
    lateness_by_kind: Mapping[str, int] = field(default_factory=dict)
    clusters: ClusterSettings = field(default_factory=ClusterSettings)
    clock: Timer = time.monotonic
    partitions: dict[int, PartitionState] = field(default_factory=dict)
    tracked: set[str] = field(default_factory=set)
    counters: Counter[str] = field(default_factory=Counter)

    def partition(self, part: int) -> PartitionState:
        """The partition's state, loaded from the store the first time after a reset."""
        ps = self.partitions.get(part)
        if ps is None:
            ps = self.partitions[part] = self._load(part)
        return ps

    def _load(self, part: int) -> PartitionState:
        states, versions = {}, {}
        for key, raw in list(self.store.items()):
            if isinstance(raw, dict) and raw.get("partition") == part:
                states[key] = SeriesState.from_dict(raw)
                versions[key] = version_of(raw)
        marks = Watermarks(
            dict(self.store.get(_wm_key(part)) or {}),
            int(self.store.get(f"{_wm_key(part)}:n") or 0),
        )
        return PartitionState(states, marks, versions, flushed_at=self.clock())

    def reset(self) -> None:
        """Forget every partition (a rebalance): each is loaded again from the store."""
        self.partitions.clear()

    def apply_bundle(
        self, part: int, partials: Iterable[Partial]
    ) -> list[tuple[str, dict[str, Any]]]:
        """Merge partials; returns the black-hole events they set off, as (entity id, event)."""
        ps = self.partition(part)
        events: list[tuple[str, dict[str, Any]]] = []
        for partial in partials:
            sid = partial.series
            state = ps.states.get(sid)
            if state is None:
                state = SeriesState(kind=partial.kind)
            verdict = state.admit(partial)
            if verdict != "new":
                self.counters[f"partials_{verdict}_total"] += 1
                continue
            state.apply(partial)
            ps.states[sid] = state
            ps.dirty.add(sid)
            ps.gone.discard(sid)
            if not partial.calls:
                continue
            if sid not in self.tracked and len(self.tracked) >= self.max_tracked:
                self.counters["activity_overflow_total"] += 1
                continue
            self.tracked.add(sid)
            kind = orjson.loads(sid)[1]  # ["@tokens", kind, id]
            events += [(sid, e) for e in state.apply_calls(partial, self.budgets[kind])]
        return events

    def apply_watermark(
        self, part: int, source: int, watermark_ns: int, sources: int
    ) -> list[ClosedWindow]:
        """Record a source partition's watermark; when the lowest of them moved on by a step,
        close every window of the partition it passed (oldest first per series) and forget
        quiet traces and sessions."""
        ps = self.partition(part)
        before = (dict(ps.marks.marks), ps.marks.sources)
        ps.marks.update(source, watermark_ns, sources)
        ps.marks_dirty |= before != (ps.marks.marks, ps.marks.sources)
        low = ps.marks.low()
        if not low or low // self.min_step_ns <= ps.last_close // self.min_step_ns:
            return []
        ps.last_close = low
        closed: list[ClosedWindow] = []
        for sid, state in list(ps.states.items()):
            done = state.close(sid, low, self.lateness_by_kind.get(state.kind, self.lateness_ns))
            if done and state.kind == "clusters":
                self._cluster(state, done)
            if done:
                closed += done
                ps.dirty.add(sid)
            act = state.activity
            if act is not None and not state.windows and act.last_ns < low - self.idle_ns:
                del ps.states[sid]
                ps.dirty.discard(sid)
                ps.gone.add(sid)
                self.tracked.discard(sid)
                self.counters["activity_expired_total"] += 1
        return closed

    def _cluster(self, state: SeriesState, done: list[ClosedWindow]) -> None:
        """Run the application's clustering over each closed window, oldest first (the same
        order at every owner: ``SeriesState.close`` sorts them)."""
        if state.model is None:
            state.model = ClusterModel()
        for c in done:
            c.extra = state.model.update(
                c.start_ns, c.spec.size_ns, c.aggregate.ordered(), self.clusters
            )

    def flush_due(self, part: int) -> bool:
        ps = self.partitions.get(part)
        return ps is not None and self.clock() - ps.flushed_at >= self.flush_interval_s

    def flush(self, part: int, offset: int) -> list[tuple[Any, Any]]:
        """The store writes that save the partition as of partials ``offset``: (key, value),
        ``None`` to delete. The caller writes them, then lets offsets up to ``offset`` commit."""
        ps = self.partition(part)
        writes: list[tuple[Any, Any]] = []
        for sid in ps.dirty:
            version = ps.versions[sid] = next_version(ps.versions.get(sid), offset)
            value = ps.states[sid].to_dict()
            value["partition"] = part
            value[VERSION] = version
            writes.append((sid, value))
        for sid in ps.gone:
            ps.versions.pop(sid, None)
            writes.append((sid, None))
        if ps.marks_dirty:
            writes.append((_wm_key(part), dict(ps.marks.marks)))
            writes.append((f"{_wm_key(part)}:n", ps.marks.sources))
        ps.dirty.clear()
        ps.gone.clear()
        ps.marks_dirty = False
        ps.flushed_at = self.clock()
        return writes

    def held(self, part: int) -> int:
        """Series and entities of the partition held in memory."""
        ps = self.partitions.get(part)
        return 0 if ps is None else len(ps.states)


# series ids of the windows that are not spans' ("@<kind>", *label values): their layer label
# and the names of the values
SIDE_SERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "@engine": ("engine", ("service", "model")),
    "@clusters": ("clusters", ("service",)),
    "@labels": ("labels", ("service", "evaluation")),
}
KIND_OF = {agg: kind for kind, agg in AGGREGATES.items()}


@dataclass
class WindowOutput:
    """Closed windows and black-hole events as the records the merge sends: labels read back
    from series and entity ids, per-partition top consumers, and token and cost totals per
    model and service (counted once per call: from the smallest window shape only)."""

    keyer: SeriesKeyer
    smallest: str  # name of the smallest window shape
    top_n: int = TOP_N
    token_totals: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    cost_totals: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # LLM calls per model and service, each counted once whatever layers it passed through
    call_totals: Counter[tuple[str, str]] = field(default_factory=Counter)

    def labels(self, sid: str) -> dict[str, str]:
        key = orjson.loads(sid)
        if key and key[0] == "@tokens":
            return {"kind": key[1], "id": key[2]}
        if key and key[0] in SIDE_SERIES:  # ["@engine", service, model], ...
            layer, names = SIDE_SERIES[key[0]]
            return {"layer": layer, **dict(zip(names, key[1:], strict=True))}
        return self.keyer.labels(key)

    def record(self, closed: ClosedWindow) -> tuple[str, dict[str, Any]]:
        """(``"tokens"``, ``"engine"``, ``"clusters"``, ``"labels"`` or ``"metrics"``, the
        window record)."""
        record = closed.to_record(self.labels(closed.series))
        kind = KIND_OF[type(closed.aggregate)]
        if kind != "tokens":
            return "metrics" if kind == "signals" else kind, record
        if closed.spec.name == self.smallest:
            self._count(record)
        return "tokens", record

    def top(self, part: int, token_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The partition's top consumers among the token windows it just closed."""
        return [{**top, "partition": part} for top in top_consumers(token_records, self.top_n)]

    def black_hole(self, sid: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"type": "black_hole", "entity": self.labels(sid), **event}

    def _count(self, record: dict[str, Any]) -> None:
        ent = record["entity"]
        if ent["kind"] not in ("model", "service"):
            return  # never per user or session: Prometheus label cardinality
        self.call_totals[(ent["kind"], ent["id"])] += record["requests"]
        for kind in TOKEN_KINDS:
            self.token_totals[(ent["kind"], ent["id"], kind)] += record[f"{kind}_tokens"]
        for ccy, nanos in record["cost_nanos"].items():
            self.cost_totals[(ent["kind"], ent["id"], ccy)] += nanos


TOKEN_KINDS = ("input", "output", "cache_read", "cache_creation", "reasoning")
