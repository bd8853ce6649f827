"""The ingest side of the scale-out windows: one source message in, partials out.

Spans arrive partitioned by trace; series are keyed by service/model/... .
:class:`PreAggregator` turns each Kafka message into one
:class:`~pipeline.windows.partial.Partial` per series it touched, tagged with the source
partition and offset, and sends it keyed by series to the partials topic, where its owner
merges it (:mod:`pipeline.windows.state`, :mod:`pipeline.windows.merge`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clusters.labels import LabelCounts, evaluation_label, labels_series_id
from ..clusters.prompts import (
    ClusterSamples,
    ClusterSettings,
    clusters_series_id,
    fingerprint,
    sample_key,
)
from ..common.clock import WallClock
from ..engine.gauges import EngineAggregate, EngineSample, engine_series_id
from ..ingest.content import ContentItem
from ..ingest.spans import LLM_OPERATIONS, Layer, LlmSpan
from ..ingest.tracetree import TraceTrees
from ..safety.messages import user_text
from ..tokens.blackhole import Call
from ..tokens.burn import (
    CallTokens,
    TokenCounts,
    counted_calls,
    counted_tools,
    entity_ids,
)
from ..tokens.pricing import PriceTable
from .golden import WAITING_LAYERS, SeriesKeyer, SignalAggregate, is_timeout, self_times
from .partial import Partial, series_id, token_entity_id
from .spec import PartitionClock, WindowSettings, WindowSpec, has_backlog, window_id, window_ids


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
    clock: PartitionClock | None = None,
) -> list[Partial]:
    """:func:`cluster_partials` of what ingest read from one message: its input content
    (prompts), with the window, sampling and bound of ``cfg``, judged late by the
    partition's ``clock`` as the message's spans were."""
    prompts = [(c.span_id, c.text) for c in contents if c.role == "input"]
    spec = WindowSpec.parse(cfg.window)
    return cluster_partials(
        partition,
        offset,
        spans,
        prompts,
        spec,
        cfg.sample_rate,
        cfg.max_samples,
        featurize,
        clock,
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
    clock: PartitionClock | None = None,
) -> list[Partial]:
    """Partials of one source message for prompt clusters: one per application (the calling
    service) with the sampled prompts of its LLM calls. ``prompts``: (span id, prompt text).
    Sampling is by span id, so every worker samples the same calls.

    With the partition's ``clock`` (after :meth:`PreAggregator.add_message` took the
    message), a sampled call whose window was closed before the message is late as a span
    is: counted in the window open at the mark, never clustered. Without it the owner would
    decide, by whether the window had closed there yet, and that depends on how fast the
    other partitions' watermarks moved: one worker and two would cluster different
    samples."""
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
        for start in spec.starts(span.end_ns):
            if clock is not None and clock.is_late(start + spec.size_ns):
                wid = window_id(spec.name, clock.late_start(spec.step_ns))
                _samples(partial, wid, max_samples).late += 1
            else:
                agg = _samples(partial, window_id(spec.name, start), max_samples)
                agg.add(key, span.end_ns, span_id, span.trace_id, featurize(prompt_text(parts)))
    return list(out.values())


@dataclass
class PreAggregator:
    """Ingest side: per source partition watermarks; one message -> partials per series."""

    settings: WindowSettings
    keyer: SeriesKeyer
    wall_ns: WallClock
    prices: PriceTable | None = None  # token accounting on when set
    signals: bool = True  # golden-signal partials on
    trees: TraceTrees | None = None  # traces joined across messages (default: built here)
    # source messages a rebalance may read again, per partition (see PartitionClock.at):
    # what the coalescer holds plus what it sent and did not commit (coalesce rules)
    rewind_depth: int = 0
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
                    start = clock.late_start(step)
                wid = wids.get((name, start))
                if wid is None:
                    wid = wids[(name, start)] = window_id(name, start)
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
                self.settings.allowed_lateness_ns,
                self.settings.idle_timeout_ns,
                self.wall_ns,
                self.rewind_depth,
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
        into: dict[str, Partial] | None = None,
    ) -> list[Partial]:
        """Partials of one source message. With ``defer_watermark`` the partition's watermark
        stays where it is: the caller takes the message's newest span end (:meth:`deferred`)
        and applies it (:meth:`observe`) once the partials are sent, so that a heartbeat can
        never announce a watermark before the partials it covers. Lateness does not wait:
        the next message's spans are judged against this one's, as without deferral.

        ``into``: the partials of the earlier messages of a batch of this partition, by
        series; this message's spans are added to them in place (their ranges grow to this
        offset), as :func:`~pipeline.windows.coalesce.coalesce` would merge them, with no
        partial of its own made and merged per message. Returns the partials it touched."""
        clock = self.clock(partition)
        clock.touch()
        clock.at(offset)  # a message read again is judged as it was the first time
        out: dict[str, Partial] = {} if into is None else into
        touched: dict[str, Partial] = {}
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
            partial = touched.get(sid)
            if partial is None:
                partial = touched[sid] = _partial(out, sid, partition, offset, "signals")
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
            self._critical_paths(clock, partition, offset, spans, out, touched)
        if self.prices is not None:
            self._token_partials(clock, partition, offset, spans, depths, out, touched)
        if newest:  # after the message: spans of one message are never late to each other
            clock.see(newest)  # later messages are judged by it, sent or not
            if defer_watermark:
                self.pending[partition] = max(self.pending.get(partition, 0), newest)
            else:
                clock.observe(newest)
        return list(touched.values())

    def _critical_paths(
        self,
        clock: PartitionClock,
        partition: int,
        offset: int,
        spans: Sequence[LlmSpan],
        out: dict[str, Partial],
        touched: dict[str, Partial],
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
                partial = touched.get(sid)
                if partial is None:
                    partial = touched[sid] = _partial(out, sid, partition, offset, "signals")
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
        out: dict[str, Partial],
        touched: dict[str, Partial],
    ) -> None:
        assert self.prices is not None
        before: dict[str, int] = {}  # token partial -> its calls before this message

        def partial(kind: str, entity: str) -> Partial:
            sid = token_entity_id(kind, entity)
            p = touched.get(sid)
            if p is None:
                p = touched[sid] = _partial(out, sid, partition, offset, "tokens")
                before[sid] = len(p.calls)
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
        # this message's calls in the order the owner applies them (Activity.apply); those
        # of earlier messages of a batch stay before them, as coalesce keeps them
        for sid, n in before.items():
            p = touched[sid]
            if n:
                p.calls[n:] = sorted(p.calls[n:], key=_call_order)
            else:
                p.calls.sort(key=_call_order)

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


def _partial(out: dict[str, Partial], sid: str, partition: int, offset: int, kind: str) -> Partial:
    """``sid``'s partial in ``out`` for the message at ``offset``: made, or held from an
    earlier message of the batch, its range then grown to this offset."""
    p = out.get(sid)
    if p is None:
        p = out[sid] = Partial(sid, partition, offset, {}, kind)
    elif p.offset != offset:
        p.reach(offset)
    return p


def _call_order(c: Call) -> tuple[int, str]:
    return (c.t_ns, c.span_id)


def _tok(partial: Partial, wid: str) -> TokenCounts:
    agg = partial.windows.get(wid)
    if agg is None:
        agg = partial.windows[wid] = TokenCounts()
    return agg


def _samples(partial: Partial, wid: str, limit: int) -> ClusterSamples:
    agg = partial.windows.get(wid)
    if agg is None:
        agg = partial.windows[wid] = ClusterSamples(limit)
    return agg


def _agg(partial: Partial, wid: str) -> SignalAggregate:
    agg = partial.windows.get(wid)
    if agg is None:
        agg = partial.windows[wid] = SignalAggregate()
    return agg
