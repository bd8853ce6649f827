"""Prometheus exposition on the worker: the latest closed window of every series, plus
the worker's own counters. Names follow Prometheus conventions (base units, ``_total``,
``_ratio``); per-user and per-trace labels never appear here (cardinality).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.ingest import IngestStats

_DISTS = {
    "ttft_s": ("spanwatch_llm_ttft_seconds", "Time to first token"),
    "tpot_s": ("spanwatch_llm_tpot_seconds", "Time per output token"),
    "latency_s": ("spanwatch_llm_latency_seconds", "End-to-end span duration"),
    "queue_s": ("spanwatch_llm_queue_seconds", "Model-server queue time"),
}


_QUANTILES = (("p50", "0.5"), ("p90", "0.9"), ("p95", "0.95"), ("p99", "0.99"))


class LatestWindows:
    """The newest closed window per (series, window shape); bounded, oldest evicted."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self.records: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

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
    ) -> None:
        """``runtime``: the window agents' MetricsRuntime (counters and token totals);
        ``stitch``: the stitch agent's counters; ``safety``: the SafetyRuntime."""
        self.latest, self.stats, self.runtime, self.safety = latest, stats, runtime, safety
        self.anomaly = anomaly  # AnomalyStage
        self.alerting = alerting  # AlertingRuntime
        self.health = health  # pipeline.health.HealthTracker
        self.stitch_runtime = stitch_runtime  # agents.stitch.StitchRuntime
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
            fam("spanwatch_llm_requests_per_second", "Spans per second").add_metric(
                labels, rec["rate_per_s"]
            )
            fam("spanwatch_llm_error_ratio", "Share of spans with error status").add_metric(
                labels, rec["error_rate"]
            )
            fam("spanwatch_llm_streaming_ratio", "Share of streamed responses").add_metric(
                labels, rec["streaming_share"]
            )
            tok = fam("spanwatch_llm_tokens_per_second", "Tokens per second", ("direction",))
            tok.add_metric([*labels, "input"], rec["input_tokens_per_s"])
            tok.add_metric([*labels, "output"], rec["output_tokens_per_s"])
            for key, (name, doc) in _DISTS.items():
                dist = rec.get(key)
                if dist:
                    f = fam(name, doc, ("quantile",))
                    for q, label in _QUANTILES:
                        f.add_metric([*labels, label], dist[q])
        yield from fams.values()
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
            mgr = self.alerting.manager
            ev = CounterMetricFamily(
                "spanwatch_alerting_events", "Alert states and notifications", labels=["event"]
            )
            for name, n in sorted(mgr.counters.items()):
                ev.add_metric([name], n)
            ev.add_metric(["samples"], self.alerting.samples)
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
        tokens = CounterMetricFamily(
            "spanwatch_llm_tokens",
            "Tokens by model or service",
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
        if self.safety.judge is not None:
            judge = CounterMetricFamily(
                "spanwatch_judge_events", "Judge model calls by outcome", labels=["outcome"]
            )
            for name, n in sorted(self.safety.judge.counters.items()):
                judge.add_metric([name], n)
            yield judge
