"""Golden signals of one series in one window: an aggregate that adds spans and merges.

Per series (service, layer, operation, model and allow-listed dimensions) and window:
TTFT, TPOT, end-to-end latency and queue time as mergeable sketches; exact counts of
requests, errors by type, streamed requests and tokens; and the self time spent in each part
of the request path (gateway, app, agent, tool, queue, prefill, decode) for "where time goes".
Sums are kept in integer nanoseconds so merging is exact and order-independent: one worker
and N workers give identical windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..ingest.spans import Layer, LlmSpan
from .sketch import QuantileSketch

DISTRIBUTIONS = ("ttft_s", "tpot_s", "latency_s", "queue_s")
QUANTILES = (0.5, 0.9, 0.95, 0.99)
MAX_ERROR_TYPES = 20  # distinct error types kept per series window; the rest are "_other"
OVERFLOW = "__overflow__"
# self-time parts, in the order reported
PARTS = (
    "gateway",
    "app",
    "agent",
    "tool",
    "dependency",
    "queue",
    "prefill",
    "decode",
    "model-server",
    "other",
)
# "dependency" is empty except on layer "dependency" series (the called Redis, database, ...)
# "node" is empty except on workflow node spans (Dify nodes, LangGraph nodes)
MAX_SERIES = 10_000  # series per worker; beyond it spans go to an overflow series
DEFAULT_DIMENSIONS = ("service", "layer", "operation", "model", "dependency", "node")
ALLOWED_DIMENSIONS = (
    *DEFAULT_DIMENSIONS,
    "provider",
    "span_kind",
    "agent_name",
    "tool_name",
    "instrumentation",
    "status",
    "caller_service",
)


TIMEOUT_WORDS = ("timeout", "timedout", "timed out", "deadline")
TIMEOUT_CODES = frozenset({"504", "408"})  # HTTP gateway timeout, request timeout


def is_timeout(span: LlmSpan) -> bool:
    """A span that ended in a timeout: its error type says so (``TimeoutError``,
    ``ReadTimeout``, ``deadline_exceeded``, ``upstream request timeout``) or is HTTP 504/408."""
    if span.status != "error" or not span.error_type:
        return False
    et = span.error_type.lower()
    return et in TIMEOUT_CODES or any(w in et for w in TIMEOUT_WORDS)


# layers whose spans wait for a model's answer (a timeout there with no call below: no response)
WAITING_LAYERS = frozenset({Layer.GATEWAY, Layer.APP, Layer.AGENT})


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1e9)


def span_values(span: LlmSpan) -> dict[str, int | None]:
    """The distribution values of a span, in integer nanoseconds."""
    return {
        "ttft_s": _ns(span.ttft_s),
        "tpot_s": _ns(span.tpot_s),
        "latency_s": _ns(span.duration_s),
        "queue_s": _ns(span.queue_s),
    }


def self_times(
    spans: Sequence[LlmSpan], children_ns: Sequence[int] | None = None
) -> list[dict[str, int]]:
    """Self time of each span by part: its duration minus its children's.

    ``children_ns`` gives the children's total duration of each span (in order), as joined
    across messages by :class:`pipeline.ingest.tracetree.TraceTrees`; without it, the children in
    ``spans`` count. Model-server time is split into queue, prefill and decode when the
    server reports them.
    """
    if children_ns is None:
        child_ns: dict[str, int] = {}
        for s in spans:
            if s.parent_span_id and s.duration_s is not None:
                child_ns[s.parent_span_id] = child_ns.get(s.parent_span_id, 0) + round(
                    s.duration_s * 1e9
                )
        children_ns = [child_ns.get(s.span_id, 0) for s in spans]
    out: list[dict[str, int]] = []
    for s, below in zip(spans, children_ns, strict=True):
        if s.duration_s is None:
            out.append({})
            continue
        own = max(round(s.duration_s * 1e9) - below, 0)
        if s.layer is Layer.MODEL_SERVER:
            parts = {
                p: v
                for p, v in (
                    ("queue", _ns(s.queue_s)),
                    ("prefill", _ns(s.prefill_s)),
                    ("decode", _ns(s.decode_s)),
                )
                if v
            }
            rest = own - sum(parts.values())
            if rest > 0:
                parts["model-server"] = rest
            out.append(parts)
        else:
            part = s.layer.value if s.layer.value in PARTS else "other"
            out.append({part: own})
    return out


# values held per name before they are bucketed (memory stays bounded: an owner's open
# windows hold at most this many per name, a few KiB, about what a sketch of them takes)
PENDING_MAX = 64


@dataclass
class SignalAggregate:
    """Aggregate of one series in one window. ``add`` spans, ``merge`` partials, ``result``."""

    count: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # by type (a dict: made per window)
    streamed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    # prefix / KV cache: cached input tokens, and the input tokens of the calls that report
    # their cache use (the ratio's denominator: a call that says nothing is not a miss)
    cache_read_tokens: int = 0
    cache_input_tokens: int = 0
    # streamed calls that ended with no first token and no output (hung or cut-off streams)
    no_first_token: int = 0
    # spans that timed out with no LLM call below them (pipeline.ingest.tracetree: "answered")
    no_response: int = 0
    preemptions: int = 0  # model server: requests preempted (vLLM) or retracted (SGLang)
    # workflow nodes: time on their run's critical path (pipeline.ingest.tracetree), and how often
    critical_ns: int = 0
    critical_count: int = 0
    late: int = 0
    sums_ns: dict[str, int] = field(default_factory=dict)
    sketches: dict[str, QuantileSketch] = field(default_factory=dict)
    self_ns: dict[str, int] = field(default_factory=dict)
    # exemplars for alerts: the slowest span [duration ns, trace id] and one error trace (the
    # smallest id: deterministic whatever the merge order, so N workers agree with one)
    slowest: tuple[int, str] | None = None
    error_trace: str | None = None
    # values not bucketed yet (added here, or a partial's ``values``): bucketed by flush()
    pending: dict[str, list[float]] = field(default_factory=dict, repr=False, compare=False)

    def flush(self, at_least: int = 0) -> None:
        """Bucket the values held (of the names holding ``at_least`` of them)."""
        for name, values in list(self.pending.items()):
            if len(values) < at_least:
                continue
            sk = self.sketches.get(name)
            if sk is None:
                sk = self.sketches[name] = QuantileSketch()
            sk.add_many(values)
            del self.pending[name]

    def add(self, span: LlmSpan, self_time: dict[str, int], no_response: bool = False) -> None:
        self.count += 1
        self.no_response += no_response
        if span.status == "error":
            etype = span.error_type or "_OTHER"
            if etype not in self.errors and len(self.errors) >= MAX_ERROR_TYPES:
                etype = "_other"
            self.errors[etype] = self.errors.get(etype, 0) + 1
            if self.error_trace is None or span.trace_id < self.error_trace:
                self.error_trace = span.trace_id
        if span.duration_s is not None:
            cand = (round(span.duration_s * 1e9), span.trace_id)
            if self.slowest is None or cand > self.slowest:
                self.slowest = cand
        if span.streaming or (span.streaming is None and span.ttft_s is not None):
            self.streamed += 1
        if span.duplicate_of is None:  # the client span of the same call counts its tokens
            self.input_tokens += span.input_tokens or 0
            self.output_tokens += span.output_tokens or 0
            if span.cache_read_tokens is not None and span.input_tokens:
                self.cache_read_tokens += span.cache_read_tokens
                self.cache_input_tokens += span.input_tokens
        if span.streaming and span.ttft_s is None and not span.output_tokens:
            self.no_first_token += 1
        if span.preemptions:
            self.preemptions += span.preemptions
        for name, v in span_values(span).items():
            if v is not None:
                self.sums_ns[name] = self.sums_ns.get(name, 0) + v
                pending = self.pending.get(name)
                if pending is None:
                    self.pending[name] = [v / 1e9]
                else:
                    pending.append(v / 1e9)
        for part, ns in self_time.items():
            self.self_ns[part] = self.self_ns.get(part, 0) + ns

    def merge(self, other: SignalAggregate) -> None:
        # Values not bucketed yet move as they are (batches of source messages merge
        # aggregates made a moment ago): a value lands in the same bucket whichever sketch
        # takes it, so this is exact, and it spares a sketch per aggregate merged.
        full = False
        for name, values in other.pending.items():
            held = self.pending.get(name)
            if held is None:
                held = self.pending[name] = list(values)
            else:
                held.extend(values)
            full = full or len(held) >= PENDING_MAX
        if full:
            self.flush(PENDING_MAX)
        self.count += other.count
        for etype, n in other.errors.items():
            key = etype if etype in self.errors or len(self.errors) < MAX_ERROR_TYPES else "_other"
            self.errors[key] = self.errors.get(key, 0) + n
        self.streamed += other.streamed
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_input_tokens += other.cache_input_tokens
        self.no_first_token += other.no_first_token
        self.no_response += other.no_response
        self.preemptions += other.preemptions
        self.critical_ns += other.critical_ns
        self.critical_count += other.critical_count
        self.late += other.late
        for name, v in other.sums_ns.items():
            self.sums_ns[name] = self.sums_ns.get(name, 0) + v
        for name, sk in other.sketches.items():
            mine = self.sketches.get(name)
            if mine is None:
                mine = self.sketches[name] = QuantileSketch(sk.alpha)
            mine.merge(sk)
        for part, ns in other.self_ns.items():
            self.self_ns[part] = self.self_ns.get(part, 0) + ns
        if other.slowest is not None and (self.slowest is None or other.slowest > self.slowest):
            self.slowest = other.slowest
        if other.error_trace is not None and (
            self.error_trace is None or other.error_trace < self.error_trace
        ):
            self.error_trace = other.error_trace

    def to_dict(self) -> dict[str, Any]:
        """The state, every value bucketed: the same whatever order merges came in."""
        self.flush()
        return self._fields()

    def to_wire(self) -> dict[str, Any]:
        """As a partial carries it: values not bucketed yet travel as they are, under
        ``values``, up to ``PENDING_MAX`` per name. A one-message partial holds a few per
        name, and a sketch each cost more to build, send, read and merge than the values
        (the per-trace shape sends one partial per trace). Exact: a value lands in the same
        bucket whichever sketch takes it, here or at the owner."""
        self.flush(PENDING_MAX)
        d = self._fields()
        if self.pending:
            d["values"] = self.pending
        return d

    def _fields(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": dict(self.errors),
            "streamed": self.streamed,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_input_tokens": self.cache_input_tokens,
            "no_first_token": self.no_first_token,
            "no_response": self.no_response,
            "preemptions": self.preemptions,
            "critical_ns": self.critical_ns,
            "critical_count": self.critical_count,
            "late": self.late,
            "sums_ns": self.sums_ns,
            "sketches": {k: v.to_dict() for k, v in self.sketches.items()},
            "self_ns": self.self_ns,
            "slowest": list(self.slowest) if self.slowest else None,
            "error_trace": self.error_trace,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignalAggregate:
        return cls(
            count=d["count"],
            errors=dict(d["errors"]),
            streamed=d["streamed"],
            input_tokens=d["input_tokens"],
            output_tokens=d["output_tokens"],
            cache_read_tokens=d.get("cache_read_tokens", 0),  # states saved before they existed
            cache_input_tokens=d.get("cache_input_tokens", 0),
            no_first_token=d.get("no_first_token", 0),
            no_response=d.get("no_response", 0),
            preemptions=d.get("preemptions", 0),
            critical_ns=d.get("critical_ns", 0),
            critical_count=d.get("critical_count", 0),
            late=d.get("late", 0),
            sums_ns=dict(d["sums_ns"]),
            sketches={k: QuantileSketch.from_dict(v) for k, v in d["sketches"].items()},
            self_ns=dict(d["self_ns"]),
            slowest=tuple(d["slowest"]) if d.get("slowest") else None,
            error_trace=d.get("error_trace"),
            # a partial's values not bucketed yet (to_wire), never shared with its sender
            pending={k: list(v) for k, v in (d.get("values") or {}).items()},
        )

    def result(self, size_s: float) -> dict[str, Any]:
        """The closed-window signals (documented in docs/SCHEMAS.md)."""
        self.flush()
        n = self.count
        errors = sum(self.errors.values())
        out: dict[str, Any] = {
            "count": n,
            "rate_per_s": n / size_s,
            "errors": errors,
            "error_rate": errors / n if n else 0.0,
            "errors_by_type": dict(sorted(self.errors.items())),
            "streaming_share": self.streamed / n if n else 0.0,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_tokens_per_s": self.input_tokens / size_s,
            "output_tokens_per_s": self.output_tokens / size_s,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_hit_ratio": (
                self.cache_read_tokens / self.cache_input_tokens
                if self.cache_input_tokens
                else None
            ),
            "no_first_token": self.no_first_token,
            "no_response": self.no_response,
            "preemptions": self.preemptions,
            "critical_path_s": self.critical_ns / 1e9,
            "critical_path_count": self.critical_count,
            "late_spans": self.late,
            "exemplars": {
                "slowest_trace_id": self.slowest[1] if self.slowest else None,
                "slowest_duration_s": self.slowest[0] / 1e9 if self.slowest else None,
                "error_trace_id": self.error_trace,
            },
        }
        for name in DISTRIBUTIONS:
            sk = self.sketches.get(name)
            if sk is None or sk.count == 0:
                out[name] = None
                continue
            dist: dict[str, Any] = {
                "count": sk.count,
                "mean": self.sums_ns.get(name, 0) / sk.count / 1e9,
                "min": sk.min,
                "max": sk.max,
            }
            for q in QUANTILES:
                dist[f"p{round(q * 100)}"] = sk.quantile(q)
            out[name] = dist
        total_self = sum(self.self_ns.values())
        out["time_share"] = (
            {p: self.self_ns[p] / total_self for p in PARTS if self.self_ns.get(p)}
            if total_self
            else {}
        )
        ttft_sum = self.sums_ns.get("ttft_s", 0)
        if ttft_sum and (self.self_ns.get("queue") or self.self_ns.get("prefill")):
            out["ttft_share"] = {
                p: min(self.self_ns.get(p, 0) / ttft_sum, 1.0) for p in ("queue", "prefill")
            }
        return out


@dataclass
class SeriesKeyer:
    """Series key of a span from allow-listed dimensions, with a cap on distinct series.

    Beyond ``max_series`` distinct keys (per worker), spans go to one overflow series and
    are counted, like the collector's spanmetrics connector.
    """

    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
    max_series: int = MAX_SERIES
    seen: set[tuple[str, ...]] = field(default_factory=set)
    overflowed: int = 0

    def __post_init__(self) -> None:
        bad = [d for d in self.dimensions if d not in ALLOWED_DIMENSIONS]
        if bad:
            raise ValueError(f"unknown metric dimensions {bad}; allowed: {ALLOWED_DIMENSIONS}")

    def key(self, span: LlmSpan) -> tuple[str, ...]:
        k = tuple(_dim(span, d) for d in self.dimensions)
        if k in self.seen:
            return k
        if len(self.seen) >= self.max_series:
            self.overflowed += 1
            return (OVERFLOW,) * len(self.dimensions)
        self.seen.add(k)
        return k

    def labels(self, key: Iterable[str]) -> dict[str, str]:
        return dict(zip(self.dimensions, key, strict=True))


def _dim(span: LlmSpan, name: str) -> str:
    if name == "model":
        return span.model or ""
    v = getattr(span, name)
    return v.value if isinstance(v, Layer) else (v or "")
