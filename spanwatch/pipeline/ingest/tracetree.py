"""Trace structure across messages: agent depth and self time when a trace is split.

A batching exporter (the SDK's ``BatchSpanProcessor``, a collector's batch processor) sends
one trace in several Kafka messages. Spans are exported as they end, so children usually
come before their parents. Spans arrive partitioned by trace id (the collector's
``partition_traces_by_id``), so the worker that owns a source partition sees every span of
its traces; per source partition it keeps a compact structure of recent traces:

- for each span seen: its parent, whether it is an agent span, and its *height* (the most
  agent spans on one path from it down to a leaf, itself included);
- for parents not seen yet: the best height of their children and the sum of their
  children's durations.

From it, in any arrival order:

- **agent depth** of a trace = the largest height, i.e. the most agent spans on one
  root-to-leaf path. A span's height is pushed up to its known ancestors when it arrives,
  and a parent arriving later picks up its children's best height, so the result does not
  depend on how the trace was split or in what order the parts came;
- **answered** spans: those with an LLM call (chat, inference, ...) below them, seen so far.
- **one count per call**: a call through an app and a model server is two LLM spans with
  usage, one the other's ancestor; within a message the outermost counts
  (:func:`pipeline.tokens.burn.counted_calls`), across messages the first to arrive does
  (:meth:`TraceShape.claim`), the other is a repeat.
  A gateway or app span that timed out with no LLM call below it is a request that got no
  response (the model call hung, or never started), counted by the windows as ``no_response``;
- **self time** of a span = its duration minus the durations of its children seen so far
  (same message or earlier ones). A child arriving after its parent cannot shrink the
  parent's self time any more (it has been counted); with children-first export this is rare.

Bounded: at most ``max_spans`` spans in all (whole traces are forgotten, least recently seen
first), at most ``max_spans_per_trace`` per trace (later ones join no structure, counted),
and a trace not seen for ``wait_ns`` (wall clock) is forgotten. Structure is kept per source
partition in memory; a partition that moves to another worker starts afresh there, so a
trace split across a rebalance is joined only from its parts after the move.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..common.clock import WallClock
from .spans import LLM_OPERATIONS, Layer, LlmSpan

MAX_HOPS = 64  # a parent chain longer than this (or a cycle) stops propagating
CLOCK_SLACK_NS = 1_000_000  # a node ending up to 1 ms after the next one's start still leads


@dataclass
class TraceShape:
    """What is known of one trace's tree."""

    parent: dict[str, str] = field(default_factory=dict)  # span id -> parent span id
    agent: set[str] = field(default_factory=set)  # agent span ids
    height: dict[str, int] = field(default_factory=dict)  # span id -> agent height
    below: dict[str, int] = field(default_factory=dict)  # span id -> best child height
    child_ns: dict[str, int] = field(default_factory=dict)  # unseen parent -> children ns
    # unseen parent -> its children's subtree time by part (where the time below it went)
    child_parts: dict[str, dict[str, int]] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)  # span ids with an LLM call below them
    calls: set[str] = field(default_factory=set)  # span ids counted as an LLM call
    call_below: set[str] = field(default_factory=set)  # span ids with a counted call below
    # workflow nodes by parent: (span id, start ns, end ns, series id) for the critical path
    nodes: dict[str, list[tuple[str, int, int, str]]] = field(default_factory=dict)
    depth: int = 0
    seen_ns: int = 0

    def add(self, span: LlmSpan) -> None:
        """Join one span (its self time is read before, with :meth:`children_ns`)."""
        sid = span.span_id
        self.child_ns.pop(sid, None)
        if sid in self.parent:
            return  # a span delivered twice joins once
        pid = span.parent_span_id
        self.parent[sid] = pid
        is_agent = span.layer is Layer.AGENT
        if is_agent:
            self.agent.add(sid)
        if sid in self.answered or span.operation in LLM_OPERATIONS:
            self._answer_up(sid)
        if sid in self.call_below:  # a call counted below it in an earlier message
            self._mark_up(sid, self.call_below)
        h = self.height[sid] = int(is_agent) + self.below.get(sid, 0)
        self.depth = max(self.depth, h)
        cur = sid
        for _ in range(MAX_HOPS):
            p = self.parent.get(cur, "")
            if not p or self.below.get(p, 0) >= h:
                break
            self.below[p] = h
            if p not in self.parent:
                break
            h = self.height[p] = int(p in self.agent) + h
            self.depth = max(self.depth, h)
            cur = p

    def claim(self, span: LlmSpan) -> bool:
        """Whether ``span`` (an outermost LLM span with usage in its message) counts as an
        LLM call: not when a call was counted above it (a model server's span after its
        caller's) or below it (the caller's span after its model server's) in an earlier
        message of the trace. One call through an app and a model server counts once,
        whichever of its spans arrives first. A counted span is remembered."""
        sid = span.span_id
        if sid in self.calls:
            return True  # delivered again: the same decision
        if sid in self.call_below:
            return False
        cur = span.parent_span_id
        for _ in range(MAX_HOPS):
            if not cur:
                break
            if cur in self.calls:
                return False
            cur = self.parent.get(cur, "")
        self.calls.add(sid)
        self._mark_up(sid, self.call_below)
        return True

    def _mark_up(self, sid: str, marked: set[str]) -> None:
        """Mark the ancestors of ``sid`` in ``marked``, up to an unseen or a marked one (an
        unseen parent carries the mark on when it arrives)."""
        cur = sid
        for _ in range(MAX_HOPS):
            p = self.parent.get(cur, "")
            if not p or p in marked:
                return
            marked.add(p)
            if p not in self.parent:
                return
            cur = p

    def _answer_up(self, sid: str) -> None:
        """Mark the ancestors of ``sid`` answered, up to an unseen or an answered one."""
        cur = sid
        for _ in range(MAX_HOPS):
            p = self.parent.get(cur, "")
            if not p or p in self.answered:
                return
            self.answered.add(p)
            if p not in self.parent:
                return  # an unseen parent carries it on when it arrives
            cur = p

    def add_child_time(self, span: LlmSpan) -> None:
        """Remember a child's duration for a parent that has not arrived yet."""
        pid = span.parent_span_id
        if pid and pid not in self.parent and span.duration_s is not None:
            self.child_ns[pid] = self.child_ns.get(pid, 0) + round(span.duration_s * 1e9)

    def children_ns(self, span_id: str) -> int:
        return self.child_ns.get(span_id, 0)

    def size(self) -> int:
        return (
            len(self.parent)
            + len(self.child_ns)
            + len(self.child_parts)
            + len(self.calls)
            + sum(len(v) for v in self.nodes.values())
        )


def _add_parts(into: dict[str, int], parts: dict[str, int]) -> None:
    for part, ns in parts.items():
        into[part] = into.get(part, 0) + ns


@dataclass
class TraceTrees:
    """Recent trace shapes of every assigned source partition, bounded (module docs)."""

    wall_ns: WallClock
    wait_ns: int = 600 * 1_000_000_000
    max_spans: int = 200_000
    max_spans_per_trace: int = 5_000
    traces: OrderedDict[tuple[int, str], TraceShape] = field(default_factory=OrderedDict)
    spans_held: int = 0
    dropped_spans: int = 0  # spans beyond a trace's cap, joined to nothing
    evicted_traces: int = 0  # forgotten for room (not for quiet)

    def join(self, partition: int, spans: Sequence[LlmSpan]) -> tuple[list[int], dict[str, int]]:
        """Join one message's spans: (children's ns for each span, in order; the depth of
        each trace the message touched, after it)."""
        now = self.wall_ns()
        self._expire(now)
        shapes: dict[str, TraceShape | None] = {}
        for s in spans:
            if s.trace_id not in shapes:
                shapes[s.trace_id] = self._shape(partition, s.trace_id, now)
        before = {t: sh.size() for t, sh in shapes.items() if sh is not None}
        # this message's children first, then what earlier messages left for each parent
        local: dict[str, int] = {}
        for s in spans:
            if s.parent_span_id and s.duration_s is not None:
                local[s.parent_span_id] = local.get(s.parent_span_id, 0) + round(s.duration_s * 1e9)
        children = []
        for s in spans:
            sh = shapes[s.trace_id]
            children.append(local.get(s.span_id, 0) + (sh.children_ns(s.span_id) if sh else 0))
        ids = {s.span_id for s in spans}
        for s in spans:
            sh = shapes[s.trace_id]
            if sh is None:
                continue
            if s.span_id in sh.parent:
                continue  # delivered twice: joined once
            if len(sh.parent) >= self.max_spans_per_trace:
                self.dropped_spans += 1
                continue
            if s.parent_span_id not in ids:  # a child of a parent in another message
                sh.add_child_time(s)
            sh.add(s)
        depths = {}
        for t, sh in shapes.items():
            if sh is None:
                continue
            self.spans_held += sh.size() - before[t]
            depths[t] = sh.depth
        self._trim()
        return children, depths

    def subtree(
        self, partition: int, spans: Sequence[LlmSpan], own: Sequence[dict[str, int]]
    ) -> list[dict[str, int]]:
        """Where the time of each span went: its own self time by part (``own``, in order)
        plus that of every span below it, in this message or earlier ones (after
        :meth:`join`). An app's chat call served by a model server is mostly the server's
        queue, prefill and decode, not "app". A span's parts are handed to a parent not seen
        yet; a parent seen before its child has been counted without it."""
        index = {s.span_id: i for i, s in enumerate(spans)}
        depth = [0] * len(spans)
        for i, s in enumerate(spans):  # hops up to the top of the message
            cur = s.parent_span_id
            for _ in range(MAX_HOPS):
                j = index.get(cur)
                if j is None or j == i:
                    break
                depth[i] += 1
                cur = spans[j].parent_span_id
        total = [dict(parts) for parts in own]
        for i in sorted(range(len(spans)), key=lambda k: -depth[k]):  # children first
            s = spans[i]
            sh = self.traces.get((partition, s.trace_id))
            if sh is not None:
                _add_parts(total[i], sh.child_parts.pop(s.span_id, {}))
            j = index.get(s.parent_span_id)
            if j is not None and j != i:
                _add_parts(total[j], total[i])
            elif sh is not None and s.parent_span_id and s.parent_span_id not in sh.parent:
                _add_parts(sh.child_parts.setdefault(s.parent_span_id, {}), total[i])
        return total

    def claim_calls(self, partition: int, calls: Sequence[LlmSpan]) -> list[LlmSpan]:
        """Of a message's counted calls (joined by :meth:`join` first), those that are no
        repeat of a call of the same trace counted in an earlier message
        (:meth:`TraceShape.claim`). A span that joined no structure counts."""
        out = []
        for span in calls:
            sh = self.traces.get((partition, span.trace_id))
            if sh is None or span.span_id not in sh.parent or sh.claim(span):
                out.append(span)
        return out

    def answered(self, partition: int, trace_id: str, span_id: str) -> bool | None:
        """Whether an LLM call has been seen below the span (joined by :meth:`join`); None
        when the span joined no structure (its trace over the caps, or forgotten)."""
        sh = self.traces.get((partition, trace_id))
        if sh is None or span_id not in sh.parent:
            return None
        return span_id in sh.answered

    def add_node(self, partition: int, span: LlmSpan, series: str) -> None:
        """Remember a workflow node span under its parent (joined by :meth:`join` first)."""
        sh = self.traces.get((partition, span.trace_id))
        if sh is None or span.span_id not in sh.parent or not span.parent_span_id:
            return
        kids = sh.nodes.setdefault(span.parent_span_id, [])
        if all(k[0] != span.span_id for k in kids):
            kids.append((span.span_id, span.start_ns, span.end_ns, series))
            self.spans_held += 1

    def critical_path(self, partition: int, span: LlmSpan) -> list[tuple[str, int, int, str]]:
        """The workflow nodes under ``span`` that its end waited for, last first: from the
        end, the node that ended last, then before its start the node that ended last, and
        so on (parallel branches: only the one that finished last counts)."""
        sh = self.traces.get((partition, span.trace_id))
        kids = sh.nodes.get(span.span_id) if sh is not None else None
        if not kids:
            return []
        path, cursor = [], span.end_ns + CLOCK_SLACK_NS
        for kid in sorted(kids, key=lambda k: (k[2], k[1]), reverse=True):
            if kid[2] <= cursor:
                path.append(kid)
                cursor = kid[1] + CLOCK_SLACK_NS
        return path

    def forget(self, keep: Iterable[int]) -> None:
        """Drop the shapes of source partitions no longer assigned."""
        kept = set(keep)
        for key in [k for k in self.traces if k[0] not in kept]:
            self.spans_held -= self.traces.pop(key).size()

    def _shape(self, partition: int, trace_id: str, now: int) -> TraceShape:
        key = (partition, trace_id)
        sh = self.traces.get(key)
        if sh is None:
            sh = self.traces[key] = TraceShape()
        else:
            self.traces.move_to_end(key)
        sh.seen_ns = now
        return sh

    def _expire(self, now: int) -> None:
        while self.traces:
            key, sh = next(iter(self.traces.items()))
            if now - sh.seen_ns < self.wait_ns:
                break
            del self.traces[key]
            self.spans_held -= sh.size()

    def _trim(self) -> None:
        while self.spans_held > self.max_spans and len(self.traces) > 1:
            _, sh = self.traces.popitem(last=False)
            self.spans_held -= sh.size()
            self.evicted_traces += 1
