"""Token accounting: exact token and cost totals per model, service, user and session window.

Which spans count: one LLM call is often seen at several layers (the app's client span, an AI
gateway span, the model server's span), each carrying the same usage. Tokens are counted once,
on the outermost span of an LLM operation that reports usage; a token-carrying span below an
already counted one (same message, which holds whole traces when the collector partitions by
trace id) is skipped. Agent and chain spans that aggregate their children's usage are not LLM
operations and are never counted.

All totals are integers (cost in nano-units per currency), so windows merge exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..ingest.spans import LLM_OPERATIONS, Layer, LlmSpan
from .pricing import NANOS_PER_UNIT, PriceTable

ENTITY_KINDS = ("model", "service", "user", "session")


def counted_calls(spans: Sequence[LlmSpan]) -> list[LlmSpan]:
    """The spans whose tokens are counted: outermost LLM operations reporting usage, and not
    a framework's repeat of a client span (:mod:`pipeline.ingest.dedupe`)."""
    by_id = {s.span_id: s for s in spans}
    out = []
    for s in spans:
        if s.operation not in LLM_OPERATIONS or (
            s.input_tokens is None and s.output_tokens is None
        ):
            continue
        if s.duplicate_of is not None:
            continue
        parent, hops = by_id.get(s.parent_span_id), 0
        shadowed = False
        while parent is not None and hops < 64:
            if parent.operation in LLM_OPERATIONS and (
                parent.input_tokens is not None or parent.output_tokens is not None
            ):
                shadowed = True
                break
            parent, hops = by_id.get(parent.parent_span_id), hops + 1
        if not shadowed:
            out.append(s)
    return out


@dataclass(frozen=True, slots=True)
class CallTokens:
    """The tokens and cost of one counted call, worked out once."""

    input: int
    output: int
    cache_read: int
    cache_creation: int
    reasoning: int
    model: str
    currency: str | None  # None: no price for the model
    cost_nanos: int

    @classmethod
    def of(cls, span: LlmSpan, prices: PriceTable) -> CallTokens:
        inp, out = span.input_tokens or 0, span.output_tokens or 0
        cr, cc = span.cache_read_tokens or 0, span.cache_creation_tokens or 0
        price = prices.lookup(span.model)
        return cls(
            inp,
            out,
            cr,
            cc,
            span.reasoning_tokens or 0,
            span.model or "",
            None if price is None else price.currency,
            0 if price is None else price.cost_nanos(inp, out, cr, cc),
        )


@dataclass
class TokenCounts:
    """Token totals of one entity in one window (all exact integers)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    # plain dicts, not Counters: one of these is made per entity and window of every message
    cost_nanos: dict[str, int] = field(default_factory=dict)  # currency -> nano-units
    unpriced_requests: int = 0
    unpriced_tokens: int = 0
    unpriced_models: dict[str, int] = field(default_factory=dict)
    late: int = 0

    def add(self, span: LlmSpan, prices: PriceTable) -> None:
        self.add_call(CallTokens.of(span, prices))

    def add_call(self, call: CallTokens) -> None:
        """Count one call (its tokens and price worked out once, for every window and entity
        it is counted in)."""
        self.requests += 1
        self.input_tokens += call.input
        self.output_tokens += call.output
        self.cache_read_tokens += call.cache_read
        self.cache_creation_tokens += call.cache_creation
        self.reasoning_tokens += call.reasoning
        if call.currency is None:
            self.unpriced_requests += 1
            self.unpriced_tokens += call.input + call.output
            models = self.unpriced_models
            if len(models) < 20 or call.model in models:
                models[call.model] = models.get(call.model, 0) + 1
        else:
            cost = self.cost_nanos
            cost[call.currency] = cost.get(call.currency, 0) + call.cost_nanos

    def merge(self, other: TokenCounts) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_creation_tokens += other.cache_creation_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.unpriced_requests += other.unpriced_requests
        self.unpriced_tokens += other.unpriced_tokens
        self.late += other.late
        cost = self.cost_nanos
        for ccy, n in other.cost_nanos.items():
            cost[ccy] = cost.get(ccy, 0) + n
        models = self.unpriced_models
        for model, n in other.unpriced_models.items():
            if len(models) < 20 or model in models:
                models[model] = models.get(model, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_nanos": dict(self.cost_nanos),
            "unpriced_requests": self.unpriced_requests,
            "unpriced_tokens": self.unpriced_tokens,
            "unpriced_models": dict(self.unpriced_models),
            "late": self.late,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenCounts:
        return cls(
            d["requests"],
            d["input_tokens"],
            d["output_tokens"],
            d["cache_read_tokens"],
            d["cache_creation_tokens"],
            d["reasoning_tokens"],
            dict(d["cost_nanos"]),
            d["unpriced_requests"],
            d["unpriced_tokens"],
            dict(d["unpriced_models"]),
            d.get("late", 0),
        )

    @property
    def count(self) -> int:
        return self.requests

    def result(self, size_s: float) -> dict[str, Any]:
        """The closed token window (documented in docs/SCHEMAS.md)."""
        out = self.to_dict()
        out["cost"] = {ccy: n / NANOS_PER_UNIT for ccy, n in sorted(self.cost_nanos.items())}
        out["total_tokens"] = self.input_tokens + self.output_tokens
        out["tokens_per_s"] = out["total_tokens"] / size_s
        out["late_spans"] = out.pop("late")
        return out


def entity_ids(span: LlmSpan) -> list[tuple[str, str]]:
    """(kind, id) of every entity a counted call is accounted to (absent ids skipped)."""
    ids = [("model", span.model or ""), ("service", span.service)]
    if span.user_id:
        ids.append(("user", span.user_id))
    if span.session_id:
        ids.append(("session", span.session_id))
    return ids


def counted_tools(spans: Sequence[LlmSpan]) -> list[LlmSpan]:
    """Tool calls, once each: an MCP server span under the client's tool span is the same call."""
    by_id = {s.span_id: s for s in spans}
    return [
        s
        for s in spans
        if s.layer is Layer.TOOL
        and not ((p := by_id.get(s.parent_span_id)) is not None and p.layer is Layer.TOOL)
    ]


def top_consumers(records: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Top ``n`` entities by tokens and by cost, per (entity kind, window), of closed token
    windows of one partition. Entities never span partitions, so the global top ``n`` is
    exactly the top ``n`` of the union of every partition's lists (:func:`merge_top`)."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in records:
        kind = r["entity"]["kind"]
        if kind in ("user", "session", "model", "service"):
            groups.setdefault((kind, r["window"]["name"], r["window"]["start_ns"]), []).append(r)
    out = []
    for (kind, name, start), rs in sorted(groups.items()):
        by_tokens = sorted(rs, key=lambda r: (-r["total_tokens"], r["entity"]["id"]))[:n]
        currencies = sorted({c for r in rs for c in r["cost_nanos"]})
        by_cost = {
            ccy: [
                {"id": r["entity"]["id"], "cost": r["cost"][ccy]}
                for r in sorted(
                    (r for r in rs if ccy in r["cost_nanos"]),
                    key=lambda r: (-r["cost_nanos"][ccy], r["entity"]["id"]),
                )[:n]
            ]
            for ccy in currencies
        }
        out.append(
            {
                "type": "top",
                "kind": kind,
                "window": {"name": name, "start_ns": start},
                "by_tokens": [
                    {"id": r["entity"]["id"], "tokens": r["total_tokens"]} for r in by_tokens
                ],
                "by_cost": by_cost,
            }
        )
    return out


def merge_top(lists: Sequence[list[dict[str, Any]]], n: int, key: str) -> list[dict[str, Any]]:
    """Global top ``n`` from per-partition top lists (disjoint entities)."""
    return sorted((e for lst in lists for e in lst), key=lambda e: (-e[key], e["id"]))[:n]


TOP_N = 10  # top consumers listed per window and entity kind
MAX_TRACKED = 100_000  # traces + sessions with black-hole activity, per worker
