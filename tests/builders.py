"""Small builders for unit tests: OTLP protobuf spans, the default pre-aggregation, a merge
stage, a clock."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from spanwatch.devtools.traffic import kvs
from spanwatch.pipeline.common.durations import NS
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.ingest.spans import Layer, LlmSpan
from spanwatch.pipeline.tokens.blackhole import Budgets
from spanwatch.pipeline.tokens.settings import BudgetSettings
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.merge import MergeStage
from spanwatch.pipeline.windows.preaggregate import PreAggregator

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN = bytes.fromhex("b7ad6b7169203331")
T0 = 1_700_000_000_000_000_000


def span(
    attrs: dict[str, Any] | None = None,
    *,
    name: str = "chat gpt-4o",
    kind: Any = Span.SPAN_KIND_CLIENT,
    start: int = T0,
    end: int = T0 + 2_000_000_000,
    trace_id: bytes = TRACE,
    span_id: bytes = SPAN,
    parent: bytes = b"",
    error: bool = False,
    events: list[tuple[str, int, dict[str, Any]]] = (),
) -> Span:
    sp = Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    sp.attributes.extend(kvs(attrs or {}))
    if error:
        sp.status.code = 2
    for ev_name, t, ev_attrs in events:
        ev = sp.events.add(name=ev_name, time_unix_nano=t)
        ev.attributes.extend(kvs(ev_attrs))
    return sp


def traces(
    *spans: Span,
    service: str | None = "chat-app",
    scope: str = "test",
    resource: dict[str, Any] | None = None,
) -> TracesData:
    data = TracesData()
    rs = data.resource_spans.add()
    attrs = dict(resource or {})
    if service is not None:
        attrs["service.name"] = service
    rs.resource.attributes.extend(kvs(attrs))
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    ss.spans.extend(spans)
    return data


def default_preaggregator() -> PreAggregator:
    """The ingest side's pre-aggregation with the default settings: golden signals and token
    accounting at the default prices, the wall clock at 0 (no partition ever idle)."""
    settings = Settings()
    ms = settings.metrics
    return PreAggregator(
        ms.window_settings(),
        SeriesKeyer(ms.dimensions, ms.max_series),
        lambda: 0,
        settings.tokens.price_table(),
    )


class Clock:
    """A monotonic clock the test sets (``t``)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def merge_stage(
    store: dict[Any, Any] | None = None,
    *,
    budgets: Budgets | None = None,
    lateness_ns: int = 0,
    **kw: Any,
) -> MergeStage:
    """A merge stage over ``store`` (a dict): windows close every 10 s of watermark, traces and
    sessions stay tracked for an hour, both under ``budgets``; ``kw``: other MergeStage fields
    (clock, lateness_by_kind, flush_interval_s, ...)."""
    b = budgets or BudgetSettings().budgets()
    return MergeStage(
        {} if store is None else store,
        lateness_ns=lateness_ns,
        min_step_ns=10 * 10**9,
        idle_ns=3600 * 10**9,
        budgets={"trace": b, "session": b},
        **kw,
    )


T0 = 1_700_000_000 * NS  # divisible by every window size the tests use


def llm_span(span_id: str = "s1", parent: str = "", **fields: Any) -> LlmSpan:
    """A normalized record with what a test does not care about filled in: a one-second
    app ``chat`` client call of trace ``t...t`` ending at ``T0 + 1 s``; ``fields`` override
    any of it (a test that times spans gives ``start_ns``, ``end_ns`` and ``duration_s``)."""
    base: dict[str, Any] = dict(
        trace_id="t" * 32,
        span_id=span_id,
        parent_span_id=parent,
        name="chat",
        service="app",
        layer=Layer.APP,
        operation="chat",
        span_kind="client",
        start_ns=T0,
        end_ns=T0 + NS,
        duration_s=1.0,
        status="ok",
    )
    base.update(fields)
    return LlmSpan(**base)
