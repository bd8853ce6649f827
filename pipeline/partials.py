"""Scale-out windows: pre-aggregate per source partition, merge per series at its owner.

Spans arrive partitioned by trace; series are keyed by service/model/... . The ingest side
(:class:`PreAggregator`) turns each Kafka message into one :class:`Partial` per series it
touched, tagged with the source partition and offset, and sends it keyed by series to the
partials topic. The series owner (:class:`SeriesState`, one per series, stored in a faust
table co-partitioned with the partials topic) merges partials idempotently (a partial whose
source offset was already applied is skipped, so at-least-once redelivery never counts twice)
and closes a window once every source partition's watermark has passed its end plus the
allowed lateness. Merging is exact and order-independent, so one worker and N workers close
identical windows.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import Field, field_validator

from spanwatch.pipeline.aggregate import WindowAggregate
from spanwatch.pipeline.blackhole import Activity, Budgets, Call
from spanwatch.pipeline.clusters import (
    ClusterModel,
    ClusterSamples,
    ClusterSettings,
    clusters_series_id,
    fingerprint,
    sample_key,
)
from spanwatch.pipeline.engine import EngineAggregate, EngineSample, engine_series_id, window_ids
from spanwatch.pipeline.labels import LabelCounts, evaluation_label, labels_series_id
from spanwatch.pipeline.pricing import PriceTable
from spanwatch.pipeline.safety.engine import ContentItem
from spanwatch.pipeline.safety.messages import user_text
from spanwatch.pipeline.settings import Duration, SettingsModel
from spanwatch.pipeline.signals import (
    ALLOWED_DIMENSIONS,
    DEFAULT_DIMENSIONS,
    WAITING_LAYERS,
    SeriesKeyer,
    SignalAggregate,
    is_timeout,
    self_times,
)
from spanwatch.pipeline.spans import Layer, LlmSpan
from spanwatch.pipeline.tokens import (
    LLM_OPERATIONS,
    CallTokens,
    TokenCounts,
    counted_calls,
    counted_tools,
    entity_ids,
)
from spanwatch.pipeline.tracetree import TraceTrees
from spanwatch.pipeline.windows import (
    NS,
    PartitionClock,
    WindowSettings,
    WindowSpec,
    has_backlog,
    parse_duration_ns,
)


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
    :mod:`pipeline.labels`).
    """

    series: str
    source: int  # source partition
    offset: int  # source offset (idempotency)
    windows: dict[str, Any]  # window id -> SignalAggregate | TokenCounts
    kind: str = "signals"
    calls: list[Call] = field(default_factory=list)  # per source message, in (time, span) order
    # first source offset of a partial covering several messages (pipeline.coalesce), whose
    # calls are then in message order; -1: the one message at ``offset``
    first: int = -1

    @property
    def lo(self) -> int:
        """The first source offset this partial covers."""
        return self.offset if self.first < 0 else self.first

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "series": self.series,
            "src": self.source,
            "off": self.offset,
            "windows": {k: v.to_dict() for k, v in self.windows.items()},
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


def engine_partials(
    partition: int, offset: int, samples: Sequence[EngineSample], specs: Sequence[WindowSpec]
) -> list[Partial]:
    """Partials of one metrics message: one per engine series, tagged with the metrics
    partition and offset (idempotent like span partials). Lateness is judged by the owner:
    a reading for a window it already closed is counted late there."""
    out: dict[str, Partial] = {}
    for s in samples:
        sid = engine_series_id(s.service, s.model)
        partial = out.get(sid)
        if partial is None:
            partial = out[sid] = Partial(sid, partition, offset, {}, "engine")
        for wid in window_ids(specs, s.t_ns):
            agg = partial.windows.get(wid)
            if agg is None:
                agg = partial.windows[wid] = EngineAggregate()
            agg.add(s)
    return list(out.values())


def label_partials(
    partition: int, offset: int, rec: dict[str, Any], specs: Sequence[WindowSpec]
) -> list[Partial]:
    """The partial of one ``spanwatch.findings`` record if it is a judge's labelled evaluation:
    its label counted in the windows of the judged call, at the owner of (service,
    evaluation); tagged with the findings partition and offset."""
    found = evaluation_label(rec)
    if found is None:
        return []
    service, evaluation, label, t_ns = found
    partial = Partial(labels_series_id(service, evaluation), partition, offset, {}, "labels")
    for wid in window_ids(specs, t_ns):
        agg = partial.windows[wid] = LabelCounts()
        agg.add(label)
    return [partial]


def prompt_partials(
    partition: int,
    offset: int,
    spans: Sequence[LlmSpan],
    contents: Sequence[ContentItem],
    cfg: ClusterSettings,
    featurize: Callable[[str], int] = fingerprint,
) -> list[Partial]:
    """:func:`cluster_partials` of what ingest read from one message: its input content
    (prompts), with the window, sampling and bound of ``cfg``."""
    prompts = [(c.span_id, c.text) for c in contents if c.role == "input"]
    spec = WindowSpec.parse(cfg.window)
    return cluster_partials(
        partition, offset, spans, prompts, spec, cfg.sample_rate, cfg.max_samples, featurize
    )


def prompt_text(parts: Sequence[str]) -> str:
    """The user's question out of a call's input content (JSON message lists: the last user
    message, so that a long system prompt does not make every call look alike)."""
    return "\n".join(user_text(p) for p in parts)


def cluster_partials(
    partition: int,
    offset: int,
    spans: Sequence[LlmSpan],
    prompts: Sequence[tuple[str, str]],
    spec: WindowSpec,
    sample_rate: float,
    max_samples: int,
    featurize: Callable[[str], int] = fingerprint,
) -> list[Partial]:
    """Partials of one source message for prompt clusters: one per application (the calling
    service) with the sampled prompts of its LLM calls. ``prompts``: (span id, prompt text).
    Sampling is by span id, so every worker samples the same calls."""
    by_id = {s.span_id: s for s in spans}
    text: dict[str, list[str]] = {}
    for span_id, prompt in prompts:
        text.setdefault(span_id, []).append(prompt)
    cut = int(sample_rate * 2**64)
    out: dict[str, Partial] = {}
    for span_id, parts in text.items():
        span = by_id.get(span_id)
        if span is None or span.duplicate_of or span.end_ns <= 0:
            continue  # a framework span repeating a client span's call: counted once
        key = sample_key(span_id)
        if key >= cut:
            continue
        sid = clusters_series_id(span.service)
        partial = out.get(sid)
        if partial is None:
            partial = out[sid] = Partial(sid, partition, offset, {}, "clusters")
        for wid in window_ids((spec,), span.end_ns):
            agg = partial.windows.get(wid)
            if agg is None:
                agg = partial.windows[wid] = ClusterSamples(max_samples)
            agg.add(key, span.end_ns, span_id, span.trace_id, featurize(prompt_text(parts)))
    return list(out.values())


def token_entity_id(kind: str, entity: str) -> str:
    return orjson.dumps(["@tokens", kind, entity]).decode()


@dataclass
class PreAggregator:
    """Ingest side: per source partition watermarks; one message -> partials per series."""

    settings: WindowSettings
    keyer: SeriesKeyer
    wall_ns: Callable[[], int]
    prices: PriceTable | None = None  # token accounting on when set
    signals: bool = True  # golden-signal partials on
    trees: TraceTrees | None = None  # traces joined across messages (default: built here)
    clocks: dict[int, PartitionClock] = field(default_factory=dict)
    pending: dict[int, int] = field(default_factory=dict)  # deferred watermarks
    processed: dict[int, int] = field(default_factory=dict)  # last offset handled, per partition
    late_spans: int = 0
    untimed_spans: int = 0
    # per span, per window shape: the name, size and step, and ids already made (hot path)
    _shapes: list[tuple[str, int, int]] = field(default_factory=list, repr=False)
    _wids: dict[tuple[str, int], str] = field(default_factory=dict, repr=False)
    _sids: dict[tuple[str, ...], str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.trees is None:
            self.trees = TraceTrees(self.wall_ns)
        self._shapes = [(s.name, s.size_ns, s.step_ns) for s in self.settings.specs]

    def _windows(self, clock: PartitionClock, end_ns: int) -> list[tuple[str, bool]]:
        """(window id, late) of every window a span ending at ``end_ns`` falls into; a late
        span goes to the open window at the watermark instead (counted, never merged)."""
        out = []
        wids = self._wids
        if len(wids) > 100_000:  # ids of windows long closed
            wids.clear()
        for name, size, step in self._shapes:
            last = end_ns - end_ns % step
            for start in range(last - size + step, last + 1, step):
                late = clock.is_late(start + size)
                if late:
                    wm = clock.watermark_ns
                    start = wm - wm % step
                wid = wids.get((name, start))
                if wid is None:
                    wid = wids[(name, start)] = f"{name}@{start}"
                out.append((wid, late))
        return out

    def _series_id(self, span: LlmSpan) -> str:
        key = self.keyer.key(span)
        sid = self._sids.get(key)
        if sid is None:
            sid = self._sids[key] = series_id(key)
        return sid

    def clock(self, partition: int) -> PartitionClock:
        c = self.clocks.get(partition)
        if c is None:
            c = self.clocks[partition] = PartitionClock(
                self.settings.allowed_lateness_ns, self.settings.idle_timeout_ns, self.wall_ns
            )
            c.touch()
        return c

    def add_message(
        self,
        partition: int,
        offset: int,
        spans: Sequence[LlmSpan],
        *,
        defer_watermark: bool = False,
    ) -> list[Partial]:
        """Partials of one source message. With ``defer_watermark`` the partition's watermark
        stays where it is: the caller takes the message's newest span end (:meth:`deferred`)
        and applies it (:meth:`observe`) once the partials are sent, so that a heartbeat can
        never announce a watermark before the partials it covers."""
        clock = self.clock(partition)
        clock.touch()
        out: dict[str, Partial] = {}
        newest = max((s.end_ns for s in spans), default=0)
        assert self.trees is not None
        children, depths = self.trees.join(partition, spans)
        below = self.trees.subtree(partition, spans, self_times(spans, children))
        for span, own in zip(spans, below, strict=True) if self.signals else ():
            end = span.end_ns
            if end <= 0:
                self.untimed_spans += 1
                continue
            sid = self._series_id(span)
            partial = out.get(sid)
            if partial is None:
                partial = out[sid] = Partial(sid, partition, offset, {})
            hung = (
                span.layer in WAITING_LAYERS
                and span.operation not in LLM_OPERATIONS  # a call that failed is an error
                and is_timeout(span)
                and self.trees.answered(partition, span.trace_id, span.span_id) is False
            )
            for wid, late in self._windows(clock, end):
                if late:
                    self.late_spans += 1
                    _agg(partial, wid).late += 1
                else:
                    _agg(partial, wid).add(span, own, hung)
        if self.signals:
            self._critical_paths(clock, partition, offset, spans, out)
        partials = list(out.values())
        if self.prices is not None:
            partials += self._token_partials(clock, partition, offset, spans, depths)
        if newest:  # after the message: spans of one batch are never late to each other
            if defer_watermark:
                self.pending[partition] = max(self.pending.get(partition, 0), newest)
            else:
                clock.observe(newest)
        return partials

    def _critical_paths(
        self,
        clock: PartitionClock,
        partition: int,
        offset: int,
        spans: Sequence[LlmSpan],
        out: dict[str, Partial],
    ) -> None:
        """Workflow nodes: remember each under its parent; when a parent of nodes arrives,
        add the time of the nodes on its critical path to their series' windows (by the
        node's end). Nodes end before their run, so they come first or with it."""
        trees = self.trees
        assert trees is not None
        for span in spans:
            if span.node is not None and span.end_ns > 0:
                trees.add_node(partition, span, self._series_id(span))
        for span in spans:
            for _, start, end, sid in trees.critical_path(partition, span):
                partial = out.get(sid)
                if partial is None:
                    partial = out[sid] = Partial(sid, partition, offset, {})
                for wid, late in self._windows(clock, end):
                    if not late:
                        agg = _agg(partial, wid)
                        agg.critical_ns += max(end - start, 0)
                        agg.critical_count += 1

    def rejoin(self, partition: int, spans: Sequence[LlmSpan]) -> None:
        """Join spans read back from before this worker's first offset of ``partition``
        (already counted by its previous owner): the trace structure only, no partials and
        no watermark, so that traces split across a change of owner join as they would have
        in one worker."""
        trees = self.trees
        assert trees is not None
        children, _ = trees.join(partition, spans)
        trees.subtree(partition, spans, self_times(spans, children))
        trees.claim_calls(partition, counted_calls(spans))
        for span in spans:
            if span.node is not None and span.end_ns > 0:
                trees.add_node(partition, span, self._series_id(span))

    def deferred(self, partition: int) -> int:
        """The newest span end of the messages added with ``defer_watermark`` since the last
        call (0: none): for a caller that sends their partials later, see :meth:`observe`."""
        return self.pending.pop(partition, 0)

    def observe(self, partition: int, newest: int) -> None:
        """Move the partition's watermark to ``newest`` (0: no-op) once the partials up to it
        have been sent."""
        if newest:
            self.clock(partition).observe(newest)

    def mark_processed(self, partition: int, offset: int) -> None:
        """The message at ``offset`` has been handled (its partials sent, or given up on):
        the partition has no backlog once its end offset is reached (:func:`has_backlog`)."""
        if offset > self.processed.get(partition, -1):
            self.processed[partition] = offset

    def backlog(self, ends: Mapping[int, tuple[int | None, int | None]]) -> set[int]:
        """Partitions with records not processed yet; ``ends``: partition -> (end offset,
        committed offset) as the consumer knows them."""
        return {
            p
            for p, (end, committed) in ends.items()
            if has_backlog(end, committed, self.processed.get(p))
        }

    def _token_partials(
        self,
        clock: PartitionClock,
        partition: int,
        offset: int,
        spans: Sequence[LlmSpan],
        depths: dict[str, int],
    ) -> list[Partial]:
        assert self.prices is not None
        out: dict[str, Partial] = {}

        def partial(kind: str, entity: str) -> Partial:
            sid = token_entity_id(kind, entity)
            p = out.get(sid)
            if p is None:
                p = out[sid] = Partial(sid, partition, offset, {}, "tokens")
            return p

        calls: set[str] = set()  # traces with a call in this message
        assert self.trees is not None
        for span in self.trees.claim_calls(partition, counted_calls(spans)):
            if span.end_ns <= 0:
                continue
            windows = self._windows(clock, span.end_ns)
            tokens = CallTokens.of(span, self.prices)
            for kind, entity in entity_ids(span):
                p = partial(kind, entity)
                for wid, late in windows:
                    if late:
                        _tok(p, wid).late += 1
                    else:
                        _tok(p, wid).add_call(tokens)
            call = Call(
                span.end_ns,
                "llm",
                span.span_id,
                (span.input_tokens or 0) + (span.output_tokens or 0),
                span.model or "",
                depth=depths.get(span.trace_id, 0),
            )
            self._add_call(partial, span, call)
            calls.add(span.trace_id)
        for span in counted_tools(spans):
            call = Call(
                span.end_ns,
                "tool",
                span.span_id,
                tool=span.tool_name or span.name,
                args_hash=span.tool_args_hash or "",
                depth=depths.get(span.trace_id, 0),
            )
            self._add_call(partial, span, call)
            calls.add(span.trace_id)
        # A trace whose depth grew with no call in this message (its agent spans came after
        # their calls, as a batching exporter sends them): one depth record (from its first agent
        # span here), so the trace's max_agent_depth budget sees the whole tree.
        for span in spans:
            if span.layer is Layer.AGENT and span.trace_id not in calls and span.end_ns > 0:
                call = Call(span.end_ns, "agent", span.span_id, depth=depths.get(span.trace_id, 0))
                self._add_call(partial, span, call)
                calls.add(span.trace_id)
        for p in out.values():  # in the order the owner applies them (Activity.apply)
            p.calls.sort(key=lambda c: (c.t_ns, c.span_id))
        return list(out.values())

    @staticmethod
    def _add_call(partial: Callable[[str, str], Partial], span: LlmSpan, call: Call) -> None:
        partial("trace", span.trace_id).calls.append(call)
        if span.session_id:
            partial("session", span.session_id).calls.append(call)

    def touch(self, partitions: Sequence[int]) -> None:
        """(Re)assigned partitions: their idle timers start now."""
        for p in partitions:
            self.clock(p).touch()

    def watermarks(
        self, partitions: Sequence[int], backlog: Collection[int] = ()
    ) -> dict[int, int]:
        """Current watermark of each assigned partition (idle ones advanced by the clock;
        those in ``backlog`` have records waiting, so they are not idle)."""
        return {p: self.clock(p).current(p in backlog) for p in partitions}

    def forget(self, partitions: Iterable[int]) -> None:
        """Revoked partitions: their clocks start afresh if they come back."""
        for p in partitions:
            self.clocks.pop(p, None)
            self.pending.pop(p, None)
            self.processed.pop(p, None)


def _tok(partial: Partial, wid: str) -> TokenCounts:
    agg = partial.windows.get(wid)
    if agg is None:
        agg = partial.windows[wid] = TokenCounts()
    return agg


def _agg(partial: Partial, wid: str) -> SignalAggregate:
    agg = partial.windows.get(wid)
    if agg is None:
        agg = partial.windows[wid] = SignalAggregate()
    return agg


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
        never made by one sender, see pipeline.coalesce; applying it would count some messages
        twice)."""
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
            name, _, start = wid.partition("@")
            spec = WindowSpec.parse(name)
            if int(start) + spec.size_ns <= self.closed.get(name, 0):
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
            name, _, start_s = wid.partition("@")
            spec, start = WindowSpec.parse(name), int(start_s)
            end = start + spec.size_ns
            if end + lateness_ns <= low_watermark_ns:
                agg = self.windows.pop(wid)
                if self.late_after_close:
                    agg.late += self.late_after_close
                    self.late_after_close = 0
                done.append(ClosedWindow(series, spec, start, agg))
                self.closed[name] = max(self.closed.get(name, 0), end)
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


class MetricsSettings(SettingsModel):
    """Golden-signal windows (see docs/ARCHITECTURE.md, "Golden signals")."""

    enabled: bool = True
    windows: tuple[str, ...] = ("10s", "1m", "5m")  # "SIZE" tumbling or "SIZE/STEP" hopping
    allowed_lateness: Duration = "5s"
    idle_timeout: Duration = "30s"  # an idle partition's watermark follows the wall clock
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
    max_series: int = Field(10_000, ge=1)  # per worker; beyond it spans go to an overflow series
    heartbeat_interval_s: float = Field(1.0, gt=0)
    # the merge keeps series state in memory and saves what changed to its table this often;
    # a successor re-applies the partials of at most this much time (docs/ARCHITECTURE.md)
    state_flush_interval: Duration = "1s"
    # the ingest side sends the partials of a source partition's messages of this many seconds
    # as one partial per series (0: each message on its own; pipeline/coalesce.py)
    coalesce_interval_s: float = Field(0.5, ge=0)
    # spans per batch, and spans sent but not committed per source partition; after each
    # assignment a partition's first this-many spans go one message at a time
    coalesce_max_spans: int = Field(5_000, ge=1)
    # a trace split over messages is joined (agent depth, self time) while its parts come
    # within trace_wait of each other; at most max_trace_spans spans are held per worker
    trace_wait: Duration = "10m"
    max_trace_spans: int = Field(200_000, ge=0)
    # a worker taking a source partition over joins again what the previous owner had joined:
    # it reads back up to this many messages (and bytes) before its first offset, within
    # trace_wait; traces older than that are joined only from their later parts (counted)
    trace_rejoin_messages: int = Field(1_000, ge=0)
    trace_rejoin_bytes: int = Field(64 * 1024 * 1024, ge=0)
    prometheus_port: int = Field(9464, ge=0, le=65535)  # 0 disables /metrics
    prometheus_bind: str = "0.0.0.0"

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one window")
        for w in v:
            WindowSpec.parse(w)
        if len(set(v)) != len(v):
            raise ValueError("duplicate window")
        return v

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [d for d in v if d not in ALLOWED_DIMENSIONS]
        if bad:
            raise ValueError(f"unknown dimensions {bad}; allowed: {list(ALLOWED_DIMENSIONS)}")
        return v

    def trace_trees(self, wall_ns: Callable[[], int]) -> TraceTrees:
        return TraceTrees(wall_ns, parse_duration_ns(self.trace_wait), self.max_trace_spans)

    def window_settings(self) -> WindowSettings:
        return WindowSettings(
            specs=tuple(WindowSpec.parse(w) for w in self.windows),
            allowed_lateness_ns=parse_duration_ns(self.allowed_lateness),
            idle_timeout_ns=parse_duration_ns(self.idle_timeout),
        )
