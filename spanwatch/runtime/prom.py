"""Prometheus exposition on the worker: counters and histograms fed by closed windows, the
latest closed window of every series as gauges, and the worker's own counters. Names follow
Prometheus conventions (base units, ``_total``, ``_ratio``); per-user and per-trace labels
never appear here, and series labels are the windows' own, bounded as they are
(``metrics.max_series``). Reference: docs/SCHEMAS.md (Prometheus).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from spanwatch.pipeline.ingest.message import IngestStats
from spanwatch.pipeline.windows.golden import MAX_ERROR_TYPES, SignalAggregate
from spanwatch.pipeline.windows.spec import WindowSettings, WindowSpec
from spanwatch.pipeline.windows.state import ClosedWindow

_DISTS = {
    "ttft_s": ("spanwatch_llm_ttft_seconds", "Time to first token"),
    "tpot_s": ("spanwatch_llm_tpot_seconds", "Time per output token"),
    "latency_s": ("spanwatch_llm_latency_seconds", "End-to-end span duration"),
    "queue_s": ("spanwatch_llm_queue_seconds", "Model-server queue time"),
}


_QUANTILES = (("p50", "0.5"), ("p90", "0.9"), ("p95", "0.95"), ("p99", "0.99"))

# Bucket bounds in seconds suited to LLM latencies: the OpenTelemetry GenAI semantic
# conventions' advisory boundaries for gen_ai.client.operation.duration,
# gen_ai.server.time_to_first_token and gen_ai.server.time_per_output_token. Queue time adds
# 1 and 5 ms below the duration buckets (an idle model server queues for microseconds).
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
QUEUE_BUCKETS = (0.001, 0.005, *DURATION_BUCKETS)
# Dependency calls (Redis, databases, HTTP, RPC): the conventions' advisory boundaries for
# http.client.request.duration, with 1 and 2.5 ms below them for cache hits.
DEPENDENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
DEPENDENCY = "dependency"  # the layer, and the label naming the called dependency
# counters of LLM-layer series summed from a SignalAggregate field: (metric, help, field)
SERIES_COUNTERS = (
    (
        "spanwatch_llm_cache_read_tokens",
        "Input tokens served from the prefix / KV cache (calls that report cache use)",
        "cache_read_tokens",
    ),
    (
        "spanwatch_llm_cache_reported_input_tokens",
        "Input tokens of the calls that report their cache use (hit ratio denominator)",
        "cache_input_tokens",
    ),
    (
        "spanwatch_llm_streams_without_first_token",
        "Streamed calls that ended with no first token and no output",
        "no_first_token",
    ),
    (
        "spanwatch_llm_no_response",
        "Gateway, app and agent spans that timed out with no LLM call below them",
        "no_response",
    ),
    (
        "spanwatch_llm_preemptions",
        "Model-server preemptions (vLLM) and retractions (SGLang) of requests",
        "preemptions",
    ),
)
HISTOGRAMS: dict[str, tuple[str, str, tuple[float, ...]]] = {
    "latency_s": (
        "spanwatch_llm_request_duration_seconds",
        "End-to-end span duration",
        DURATION_BUCKETS,
    ),
    "ttft_s": ("spanwatch_llm_time_to_first_token_seconds", "Time to first token", TTFT_BUCKETS),
    "tpot_s": (
        "spanwatch_llm_time_per_output_token_seconds",
        "Time per output token after the first",
        TPOT_BUCKETS,
    ),
    "queue_s": ("spanwatch_llm_queue_duration_seconds", "Model-server queue time", QUEUE_BUCKETS),
}


def counting_spec(windows: WindowSettings) -> WindowSpec:
    """The window shape whose closed windows feed the counters and histograms: the smallest
    one. Only its windows that start on a multiple of its size count, so each span is
    counted once even when the shape hops (``1m/30s``: every other window)."""
    return windows.smallest


@dataclass
class _SeriesTotals:
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    tokens: Counter[str] = field(default_factory=Counter)  # direction -> tokens
    counts: Counter[str] = field(default_factory=Counter)  # SERIES_COUNTERS field -> sum
    buckets: dict[str, list[int]] = field(default_factory=dict)  # window value -> counts
    sums_ns: dict[str, int] = field(default_factory=dict)  # exact whatever the order


class WindowTotals:
    """Request, error and token counters and latency histograms per series, fed by closed
    windows (:meth:`on_window_closed`). A window is closed once, by its series' owner, from
    partials merged exactly once, so the sums over all workers equal what one worker would
    count, and ``rate()``/``histogram_quantile()`` work across workers and over any range.
    Late spans (counted in ``late_spans``, never merged) are not counted here either.
    Bounded: the series are the windows' own; past ``max_series`` the oldest is dropped (its
    counters restart if it comes back, which ``rate()`` reads as a counter reset)."""

    def __init__(self, spec: WindowSpec, max_series: int = 50_000) -> None:
        self.spec = spec
        self.max_series = max_series
        self.series: OrderedDict[tuple[tuple[str, str], ...], _SeriesTotals] = OrderedDict()

    def on_window_closed(self, closed: ClosedWindow, record: dict[str, Any]) -> None:
        agg = closed.aggregate
        if (
            closed.spec != self.spec
            or closed.start_ns % self.spec.size_ns
            or not isinstance(agg, SignalAggregate)
        ):
            return
        key = tuple(sorted(record["series"].items()))
        t = self.series.get(key)
        if t is None:
            t = self.series[key] = _SeriesTotals()
            while len(self.series) > self.max_series:
                self.series.popitem(last=False)
        self.series.move_to_end(key)
        t.requests += agg.count
        for etype, n in agg.errors.items():
            if etype not in t.errors and len(t.errors) >= MAX_ERROR_TYPES:
                etype = "_other"
            t.errors[etype] += n
        t.tokens["input"] += agg.input_tokens
        t.tokens["output"] += agg.output_tokens
        for _, _, name in SERIES_COUNTERS:
            t.counts[name] += getattr(agg, name)
        agg.flush()
        dep = record["series"].get("layer") == DEPENDENCY
        for name in HISTOGRAMS:
            bounds = _bounds(name, dep)
            sk = agg.sketches.get(name)
            if sk is None or not sk.count:
                continue
            counts = sk.bucket_counts(bounds)
            have = t.buckets.get(name)
            if have is not None:
                counts = [a + b for a, b in zip(have, counts, strict=True)]
            t.buckets[name] = counts
            t.sums_ns[name] = t.sums_ns.get(name, 0) + agg.sums_ns.get(name, 0)

    def families(self) -> Iterator[Metric]:
        """LLM-layer series as ``spanwatch_llm_*`` and dependency calls as
        ``spanwatch_dependency_*``, each without the label that is always empty for it."""
        llm = [(k, t) for k, t in self.series.items() if dict(k).get("layer") != DEPENDENCY]
        deps = [(k, t) for k, t in self.series.items() if dict(k).get("layer") == DEPENDENCY]
        yield from self._llm_families([(_drop(k, DEPENDENCY), t) for k, t in llm])
        yield from self._dependency_families([(_drop(k, "model", "node"), t) for k, t in deps])

    @staticmethod
    def _dependency_families(
        series: list[tuple[tuple[tuple[str, str], ...], _SeriesTotals]],
    ) -> Iterator[Metric]:
        if not series:
            return
        names = [k for k, _ in series[0][0]]
        duration = HistogramMetricFamily(
            "spanwatch_dependency_request_duration_seconds",
            "Duration of dependency calls",
            labels=names,
        )
        for key, t in series:
            counts = t.buckets.get("latency_s")
            if counts is not None:
                labels = [v for _, v in key]
                cumulative = _cumulative(DEPENDENCY_BUCKETS, counts)
                duration.add_metric(labels, cumulative, t.sums_ns["latency_s"] / 1e9)
        yield from _requests_and_errors(
            "spanwatch_dependency",
            "Client calls to dependencies (Redis, databases, HTTP, RPC)",
            names,
            series,
        )
        yield duration

    @staticmethod
    def _llm_families(
        series: list[tuple[tuple[tuple[str, str], ...], _SeriesTotals]],
    ) -> Iterator[Metric]:
        if not series:
            return
        names = [k for k, _ in series[0][0]]
        tokens = CounterMetricFamily(
            "spanwatch_llm_request_tokens",
            "Input and output tokens of the calls in closed windows",
            labels=[*names, "direction"],
        )
        counted = [
            (CounterMetricFamily(metric, doc, labels=names), name)
            for metric, doc, name in SERIES_COUNTERS
        ]
        hists = {
            name: HistogramMetricFamily(metric, doc, labels=names)
            for name, (metric, doc, _) in HISTOGRAMS.items()
        }
        for key, t in series:
            labels = [v for _, v in key]
            for family, name in counted:
                family.add_metric(labels, t.counts[name])
            for direction in ("input", "output"):
                tokens.add_metric([*labels, direction], t.tokens[direction])
            for name, counts in t.buckets.items():
                cumulative = _cumulative(HISTOGRAMS[name][2], counts)
                hists[name].add_metric(labels, cumulative, t.sums_ns[name] / 1e9)
        yield from _requests_and_errors("spanwatch_llm", "LLM-layer spans (calls)", names, series)
        yield tokens
        for family, _ in counted:
            yield family
        yield from hists.values()


def _requests_and_errors(
    prefix: str,
    what: str,
    names: list[str],
    series: list[tuple[tuple[tuple[str, str], ...], _SeriesTotals]],
) -> Iterator[Metric]:
    """``<prefix>_requests_total`` and ``<prefix>_errors_total{error_type}`` of ``series``."""
    requests = CounterMetricFamily(f"{prefix}_requests", f"{what} in closed windows", labels=names)
    errors = CounterMetricFamily(
        f"{prefix}_errors",
        f"{what} with error status in closed windows",
        labels=[*names, "error_type"],
    )
    for key, t in series:
        labels = [v for _, v in key]
        requests.add_metric(labels, t.requests)
        for etype, n in sorted(t.errors.items()):
            errors.add_metric([*labels, etype], n)
    yield requests
    yield errors


def _bounds(name: str, dependency: bool) -> tuple[float, ...]:
    return DEPENDENCY_BUCKETS if dependency and name == "latency_s" else HISTOGRAMS[name][2]


def _cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, int]]:
    out, running = [], 0
    for le, c in zip((*map(str, bounds), "+Inf"), counts, strict=True):
        running += c
        out.append((le, running))
    return out


def _drop(key: tuple[tuple[str, str], ...], *labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(kv for kv in key if kv[0] not in labels)


class LatestWindows:
    """The newest closed window per (series, window shape); bounded, oldest evicted."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self.records: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def on_window_closed(self, closed: ClosedWindow, record: dict[str, Any]) -> None:
        self.add(record)

    def add(self, record: dict[str, Any]) -> None:
        key = (repr(sorted(record["series"].items())), record["window"]["name"])
        old = self.records.get(key)
        if old is not None and old["window"]["end_ns"] > record["window"]["end_ns"]:
            return
        self.records[key] = record
        self.records.move_to_end(key)
        while len(self.records) > self.max_entries:
            self.records.popitem(last=False)


def _health_families(report: dict[str, Any]) -> Iterator[Metric]:
    ready = GaugeMetricFamily("spanwatch_worker_ready", "1 when joined, restored and not stalled")
    ready.add_metric([], float(bool(report.get("ready"))))
    yield ready
    lag = GaugeMetricFamily(
        "spanwatch_consumer_lag_records",
        "End offset minus committed offset, per assigned partition",
        labels=["topic", "partition"],
    )
    for row in report.get("partitions", []):
        if row.get("lag") is not None:
            lag.add_metric([row["topic"], str(row["partition"])], row["lag"])
    yield lag
    stalled = GaugeMetricFamily(
        "spanwatch_stage_stalled", "1 when a stage has lag and made no progress", labels=["stage"]
    )
    for stage, info in sorted(report.get("stages", {}).items()):
        stalled.add_metric([stage], float(bool(info.get("stalled"))))
    yield stalled


class SpanwatchCollector(Collector):
    """prometheus-client collector over :class:`LatestWindows` and worker counters."""

    def __init__(
        self,
        latest: LatestWindows,
        stats: IngestStats,
        runtime: Any = None,
        stitch: dict[str, int] | None = None,
        safety: Any = None,
        anomaly: Any = None,
        alerting: Any = None,
        health: Any = None,
        stitch_runtime: Any = None,
        totals: WindowTotals | None = None,
    ) -> None:
        """``runtime``: the window agents' MetricsRuntime (counters and token totals);
        ``stitch``: the stitch agent's counters; ``safety``: the SafetyDriver."""
        self.latest, self.stats, self.runtime, self.safety = latest, stats, runtime, safety
        self.anomaly = anomaly  # AnomalyStage
        self.alerting = alerting  # AlertingRuntime
        self.health = health  # pipeline.common.health.HealthTracker
        self.stitch_runtime = stitch_runtime  # pipeline.stitch.StitchStage
        self.totals = totals
        self.stitch = stitch if stitch is not None else {}  # an empty Counter is falsy

    def _health(self) -> Iterator[Metric]:
        if self.health is not None and self.health.report:
            yield from _health_families(self.health.report)

    def collect(self) -> Iterator[Metric]:
        yield from self._health()
        records = list(self.latest.records.values())
        label_names = (sorted(records[0]["series"]) if records else []) + ["window"]
        fams: dict[str, GaugeMetricFamily] = {}

        def fam(name: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
            f = fams.get(name)
            if f is None:
                f = fams[name] = GaugeMetricFamily(
                    name, doc + " (latest closed window)", labels=[*label_names, *extra]
                )
            return f

        for rec in records:
            labels = [rec["series"][k] for k in label_names[:-1]] + [rec["window"]["name"]]
            # calls to Redis, databases, ... are spanwatch_dependency_*, as their counters are
            dep = rec["series"].get("layer") == DEPENDENCY
            prefix = "spanwatch_dependency_" if dep else "spanwatch_llm_"
            fam(prefix + "requests_per_second", "Spans per second").add_metric(
                labels, rec["rate_per_s"]
            )
            fam(prefix + "error_ratio", "Share of spans with error status").add_metric(
                labels, rec["error_rate"]
            )
            if not dep:
                fam("spanwatch_llm_streaming_ratio", "Share of streamed responses").add_metric(
                    labels, rec["streaming_share"]
                )
                tok = fam("spanwatch_llm_tokens_per_second", "Tokens per second", ("direction",))
                tok.add_metric([*labels, "input"], rec["input_tokens_per_s"])
                tok.add_metric([*labels, "output"], rec["output_tokens_per_s"])
            for key, (name, doc) in _DISTS.items():
                dist = rec.get(key)
                if dist:
                    f = fam(prefix + name.removeprefix("spanwatch_llm_"), doc, ("quantile",))
                    for q, label in _QUANTILES:
                        f.add_metric([*labels, label], dist[q])
        yield from fams.values()
        if self.totals is not None:
            yield from self.totals.families()
        s = self.stats
        yield CounterMetricFamily(
            "spanwatch_ingest_messages", "Kafka messages ingested", value=s.messages
        )
        spans = CounterMetricFamily(
            "spanwatch_ingest_spans", "Spans by outcome", labels=["outcome"]
        )
        spans.add_metric(["record"], s.records)
        spans.add_metric(["skipped_non_llm"], s.skipped_non_llm)
        spans.add_metric(["rejected"], s.rejected_spans)
        yield spans
        yield CounterMetricFamily(
            "spanwatch_duplicate_llm_spans",
            "Framework LLM spans repeating a client span's "
            "call, not counted again (normalize.dedupe_instrumentations)",
            value=s.duplicate_llm_spans,
        )
        dead = CounterMetricFamily(
            "spanwatch_deadletters", "Dead letters by reason", labels=["reason"]
        )
        for reason, n in sorted(s.deadletters.items()):
            dead.add_metric([reason], n)
        yield dead
        yield CounterMetricFamily(
            "spanwatch_deadletter_send_errors",
            "Dead letters that could not be sent at all (logged; the message stays on its topic)",
            value=s.deadletter_send_errors,
        )
        skew = CounterMetricFamily(
            "spanwatch_ingest_clock_skew_spans",
            "LLM spans ending ahead of the worker's clock (ingest.max_future_skew: moved back) "
            "or out of any range (ingest.max_timestamp_skew: dead letter)",
            labels=["outcome"],
        )
        skew.add_metric(["moved_back"], s.future_shifted)
        skew.add_metric(["dead_letter"], s.out_of_range)
        yield skew
        stitch = CounterMetricFamily(
            "spanwatch_stitch_events", "Chunked-payload events", labels=["event"]
        )
        for name, n in sorted(self.stitch.items()):
            stitch.add_metric([name], n)
        yield stitch
        if self.stitch_runtime is not None:
            yield GaugeMetricFamily(
                "spanwatch_stitch_payloads_held",
                "Incomplete payloads this worker holds (times out, evicts)",
                value=len(self.stitch_runtime.held),
            )
            yield GaugeMetricFamily(
                "spanwatch_stitch_bytes_held",
                "Bytes of incomplete payloads this worker holds",
                value=self.stitch_runtime.bytes_held,
            )
        if self.safety is not None:
            yield from self._safety()
        if self.anomaly is not None:
            a = self.anomaly.stats
            events = CounterMetricFamily(
                "spanwatch_anomaly_events", "Anomaly scoring outcomes", labels=["outcome"]
            )
            for name in (
                "scored",
                "anomalies",
                "duplicates",
                "series_overflow",
                "skipped_missing",
                "errors",
            ):
                events.add_metric([name], getattr(a, name))
            yield events
        if self.alerting is not None:
            mgr = self.alerting.driver.manager
            ev = CounterMetricFamily(
                "spanwatch_alerting_events", "Alert states and notifications", labels=["event"]
            )
            for name, n in sorted(mgr.counters.items()):
                ev.add_metric([name], n)
            ev.add_metric(["samples"], self.alerting.driver.samples)
            ev.add_metric(["errors"], self.alerting.errors)
            yield ev
            firing = GaugeMetricFamily("spanwatch_alerts_firing", "Alerts firing now (owner only)")
            firing.add_metric([], sum(a.state == "firing" for a in mgr.alerts.values()))
            yield firing
            yield GaugeMetricFamily(
                "spanwatch_notifications_pending",
                "Notifications waiting for delivery",
                value=len(mgr.outbox),
            )
        if self.runtime is None:
            return
        for name, value in sorted(self.runtime.counters.items()):
            family = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
            yield family(f"spanwatch_{name}", name.replace("_", " "), value=value)
        calls = CounterMetricFamily(
            "spanwatch_llm_calls",
            "LLM calls by model or service, each counted once (the outermost LLM span with "
            "usage), whatever layers (app, gateway, model server) it passed through",
            labels=["entity_kind", "entity"],
        )
        for (kind, entity), n in sorted(self.runtime.call_totals.items()):
            calls.add_metric([kind, entity], n)
        yield calls
        tokens = CounterMetricFamily(
            "spanwatch_llm_tokens",
            "Tokens by model or service, each call counted once",
            labels=["entity_kind", "entity", "type"],
        )
        for (kind, entity, typ), n in sorted(self.runtime.token_totals.items()):
            tokens.add_metric([kind, entity, typ], n)
        yield tokens
        cost = CounterMetricFamily(
            "spanwatch_llm_cost",
            "Cost by model or service",
            labels=["entity_kind", "entity", "currency"],
        )
        for (kind, entity, ccy), nanos in sorted(self.runtime.cost_totals.items()):
            cost.add_metric([kind, entity, ccy], nanos / 1e9)
        yield cost

    def _safety(self) -> Iterator[Metric]:
        st = self.safety.engine.stats
        found = CounterMetricFamily(
            "spanwatch_safety_findings",
            "Content-safety findings",
            labels=["kind", "category", "severity"],
        )
        for (kind, cat, sev), n in sorted(st.findings.items()):
            found.add_metric([kind, cat, sev], n)
        yield found
        yield CounterMetricFamily("spanwatch_safety_texts", "Texts scanned", value=st.texts)
        yield CounterMetricFamily(
            "spanwatch_safety_scanned_chars", "Characters scanned", value=st.chars
        )
        yield CounterMetricFamily(
            "spanwatch_safety_truncated_texts",
            "Texts longer than safety.max_chars",
            value=st.truncated,
        )
        errs = CounterMetricFamily(
            "spanwatch_safety_scanner_errors", "Scanner exceptions", labels=["scanner"]
        )
        for name, n in sorted(st.scanner_errors.items()):
            errs.add_metric([name], n)
        yield errs
        skipped = CounterMetricFamily(
            "spanwatch_safety_skipped_texts", "Texts not scanned, by reason", labels=["reason"]
        )
        for reason, n in sorted(self.safety.counters.items()):
            skipped.add_metric([reason], n)
        yield skipped
        if self.safety.judges:
            judge = CounterMetricFamily(
                "spanwatch_judge_events",
                "Judge model calls by evaluation and outcome",
                labels=["evaluation", "outcome"],
            )
            for evaluation, queue in sorted(self.safety.judges.items()):
                for name, n in sorted(queue.counters.items()):
                    judge.add_metric([evaluation, name], n)
            yield judge
