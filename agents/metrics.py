"""Golden-signal agents: partial windows out of ingest, merged per series, closed windows out.

Topics and tables (see docs/ARCHITECTURE.md):

* ``spanwatch.partials``: one message per (source message, series), keyed by series id; plus
  watermark heartbeats of every assigned source partition, sent to every partials partition.
* table ``series`` (changelog ``<app_id>-series-changelog``): a
  :class:`~pipeline.partials.SeriesState` per series id, and ``__wm__:<partition>``
  watermarks; co-partitioned with ``spanwatch.partials``.
* ``spanwatch.metrics``: closed windows (JSON, keyed by series id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from agents.ingest import SpanSink
from pipeline.config import Settings
from pipeline.deadletter import SourceRef
from pipeline.partials import ClosedWindow, Partial, PreAggregator, SeriesState, Watermarks
from pipeline.signals import SeriesKeyer
from pipeline.spans import LlmSpan
from spanwatch.prom import LatestWindows

log = logging.getLogger("spanwatch.metrics")


@dataclass
class MetricsRuntime:
    """What the metrics agents share with the worker (counters, the Prometheus store)."""

    preagg: PreAggregator
    latest: LatestWindows = field(default_factory=LatestWindows)
    counters: dict[str, int] = field(default_factory=lambda: {
        "partials_sent_total": 0, "partials_duplicate_total": 0, "windows_closed_total": 0,
        "late_spans_total": 0, "series_overflow_total": 0, "merge_errors_total": 0})


def register(app: faust.App, settings: Settings, source_partitions: int) -> tuple[SpanSink,
                                                                                   MetricsRuntime]:
    """Declare the metrics topics, table, agent and timer; return the ingest-side sink."""
    topics, ms = settings.topics, settings.metrics
    wsettings = ms.window_settings()
    partials = app.topic(topics.partials, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw",
                         partitions=topics.partitions)
    metrics_out = app.topic(topics.metrics, key_serializer="raw", value_serializer="raw")
    table = app.Table("series", default=None, partitions=topics.partitions)
    keyer = SeriesKeyer(ms.dimensions, ms.max_series)
    rt = MetricsRuntime(PreAggregator(wsettings, keyer, time.time_ns))
    lateness = wsettings.allowed_lateness_ns
    min_step = min(s.step_ns for s in wsettings.specs)
    last_close: dict[int, int] = {}

    async def sink(where: SourceRef, spans: Sequence[LlmSpan]) -> None:
        for p in rt.preagg.add_message(where.partition, where.offset, spans):
            await partials.send(key=p.series.encode(), value=p.to_bytes())
            rt.counters["partials_sent_total"] += 1
        rt.counters["late_spans_total"] = rt.preagg.late_spans
        rt.counters["series_overflow_total"] = keyer.overflowed

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode types it as sync
    async def on_assigned(sender: Any, assigned: Any, *, signal: Any, **kwargs: Any) -> None:
        # A rebalance pauses consumption: restart the idle timer of every source partition
        # this worker (still or newly) owns, so the pause never reads as an idle partition.
        rt.preagg.touch([tp.partition for tp in assigned if tp.topic == topics.source])

    @app.timer(interval=ms.heartbeat_interval_s)
    async def heartbeat() -> None:
        assigned = sorted(tp.partition for tp in app.consumer.assignment()
                          if tp.topic == topics.source)
        for src, wm in rt.preagg.watermarks(assigned).items():
            beat = orjson.dumps({"type": "wm", "src": src, "wm": wm, "n_src": source_partitions})
            for part in range(topics.partitions):
                await partials.send(key=f"__wm__:{part}".encode(), value=beat, partition=part)

    async def emit(closed: list[ClosedWindow]) -> None:
        for c in closed:
            record = c.to_record(keyer.labels(orjson.loads(c.series)))
            await metrics_out.send(key=c.series.encode(), value=orjson.dumps(record))
            rt.latest.add(record)
            rt.counters["windows_closed_total"] += 1

    async def close_partition(part: int, low: int) -> None:
        for sid, raw in list(table.items()):
            if not isinstance(raw, dict) or raw.get("partition") != part:
                continue
            state = SeriesState.from_dict(raw)
            closed = state.close(sid, low, lateness)
            if closed:
                await emit(closed)  # at-least-once: emit, then record the close
                table[sid] = {**state.to_dict(), "partition": part}

    @app.agent(partials, name="spanwatch.merge")
    async def merge(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            part = event.message.partition
            try:
                d: dict[str, Any] = orjson.loads(event.value)
                if d.get("type") == "wm":
                    key = f"__wm__:{part}"
                    marks = Watermarks(dict(table.get(key) or {}), 0)
                    marks.sources = int(table.get(f"{key}:n") or 0)
                    marks.update(int(d["src"]), int(d["wm"]), int(d["n_src"]))
                    table[key] = marks.marks
                    table[f"{key}:n"] = marks.sources
                    low = marks.low()
                    if low and low // min_step > last_close.get(part, 0) // min_step:
                        last_close[part] = low
                        await close_partition(part, low)
                    continue
                partial = Partial.from_dict(d)
                raw = table.get(partial.series)
                state = SeriesState.from_dict(raw) if raw else SeriesState()
                if state.apply(partial):
                    table[partial.series] = {**state.to_dict(), "partition": part}
                else:
                    rt.counters["partials_duplicate_total"] += 1
            except Exception:
                rt.counters["merge_errors_total"] += 1
                log.exception("merge failed at %s", SourceRef(event.message.topic, part,
                                                                event.message.offset))

    return sink, rt
