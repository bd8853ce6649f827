"""Prometheus exposition of the latest closed windows and worker counters."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from spanwatch.pipeline.ingest.message import IngestStats
from spanwatch.pipeline.windows.golden import SignalAggregate
from spanwatch.pipeline.windows.spec import WindowSettings, WindowSpec
from spanwatch.pipeline.windows.state import ClosedWindow
from spanwatch.runtime.prom import LatestWindows, SpanwatchCollector
from tests.builders import llm_span


def _record(end_offset_s: int, ttft: float) -> dict[str, object]:
    agg = SignalAggregate()
    span = llm_span(
        "b" * 16,
        trace_id="a" * 32,
        service="svc",
        start_ns=0,
        end_ns=10**9,
        request_model="m",
        ttft_s=ttft,
        output_tokens=10,
    )
    agg.add(span, {"app": 10**9})
    closed = ClosedWindow(
        '["svc","app","chat","m"]', WindowSpec.parse("10s"), end_offset_s * 10**9, agg
    )
    return closed.to_record({"service": "svc", "layer": "app", "operation": "chat", "model": "m"})


def test_latest_window_wins_and_is_exposed_with_prometheus_names() -> None:
    latest = LatestWindows()
    latest.add(_record(20, 0.5))
    latest.add(_record(10, 9.0))  # older window arriving late: ignored
    stats = IngestStats(messages=3)
    stats.deadletters["bad_json"] += 2
    reg = CollectorRegistry()
    runtime = SimpleNamespace(
        counters={"windows_closed_total": 2},
        token_totals=Counter({("model", "m", "input"): 7}),
        cost_totals=Counter({("model", "m", "USD"): 1_500_000_000}),
        call_totals=Counter({("model", "m"): 3}),
    )
    reg.register(SpanwatchCollector(latest, stats, runtime))
    text = generate_latest(reg).decode()
    labels = 'layer="app",model="m",operation="chat",service="svc",window="10s"'
    assert (
        'spanwatch_llm_ttft_seconds{layer="app",model="m",operation="chat",'
        'quantile="0.5",service="svc",window="10s"} 0.5'
    ) in text
    assert f"spanwatch_llm_requests_per_second{{{labels}}} 0.1" in text
    assert f'spanwatch_llm_tokens_per_second{{direction="output",{labels}}} 1.0' in text
    assert 'spanwatch_deadletters_total{reason="bad_json"} 2.0' in text
    assert "spanwatch_ingest_messages_total 3.0" in text
    assert "spanwatch_windows_closed_total 2.0" in text
    assert 'spanwatch_llm_tokens_total{entity="m",entity_kind="model",type="input"} 7.0' in text
    assert 'spanwatch_llm_cost_total{currency="USD",entity="m",entity_kind="model"} 1.5' in text
    assert 'spanwatch_llm_calls_total{entity="m",entity_kind="model"} 3.0' in text
    assert "user" not in text  # no per-user labels


def test_latest_windows_is_bounded() -> None:
    latest = LatestWindows(max_entries=2)
    for i in range(3):
        rec = _record(10, 0.1)
        rec["series"] = {"service": f"s{i}"}
        latest.add(rec)
    assert len(latest.records) == 2


def test_sketch_bucket_counts_put_each_value_under_its_bound() -> None:
    from spanwatch.pipeline.windows.sketch import QuantileSketch

    sk = QuantileSketch()
    sk.add_many([0.0, 0.05, 0.3, 0.3, 0.9, 7.0, 100.0])
    # (.., 0.1], (0.1, 0.5], (0.5, 1], (1, 10], (10, +Inf)
    assert sk.bucket_counts([0.1, 0.5, 1.0, 10.0]) == [2, 2, 1, 1, 1]
    assert sum(sk.bucket_counts([1.0])) == sk.count


def _closed(start_s: int, spec: str, durations: list[float], model: str = "m") -> ClosedWindow:
    agg = SignalAggregate()
    for i, d in enumerate(durations):
        span = llm_span(
            f"{i:016x}",
            trace_id=f"{i:032x}",
            service="svc",
            start_ns=0,
            end_ns=int(d * 1e9),
            duration_s=d,
            status="error" if i == 0 else "ok",
            request_model=model,
            ttft_s=d / 10,
            input_tokens=5,
            output_tokens=10,
        )
        agg.add(span, {"app": int(d * 1e9)})
    return ClosedWindow(f'["{model}"]', WindowSpec.parse(spec), start_s * 10**9, agg)


def test_window_totals_count_each_span_once_as_counters_and_histograms() -> None:
    from spanwatch.runtime.prom import WindowTotals, counting_spec

    spec = counting_spec(WindowSettings((WindowSpec.parse("1m/30s"), WindowSpec.parse("5m")), 0, 1))
    assert spec == WindowSpec.parse("1m/30s")
    totals = WindowTotals(spec)
    labels = {"service": "svc", "layer": "app", "operation": "chat", "model": "m"}
    for closed in (
        _closed(60, "1m/30s", [0.2, 3.0]),
        _closed(90, "1m/30s", [0.2, 3.0]),  # overlaps the first: not counted again
        _closed(120, "1m/30s", [0.5]),
        _closed(120, "5m", [0.2, 3.0, 0.5]),  # another shape: not counted
    ):
        totals.on_window_closed(closed, closed.to_record(labels))
    reg = CollectorRegistry()
    reg.register(SpanwatchCollector(LatestWindows(), IngestStats(), totals=totals))
    got = _samples(generate_latest(reg).decode())
    assert got[("spanwatch_llm_requests_total", ())] == 3
    assert got[("spanwatch_llm_errors_total", (("error_type", "_OTHER"),))] == 2
    assert got[("spanwatch_llm_request_tokens_total", (("direction", "output"),))] == 30
    hist = "spanwatch_llm_request_duration_seconds"
    assert got[(f"{hist}_bucket", (("le", "0.32"),))] == 1  # 0.2
    assert got[(f"{hist}_bucket", (("le", "0.64"),))] == 2  # and 0.5
    assert got[(f"{hist}_bucket", (("le", "5.12"),))] == 3  # and 3.0
    assert got[(f"{hist}_bucket", (("le", "+Inf"),))] == got[(f"{hist}_count", ())] == 3
    assert abs(got[(f"{hist}_sum", ())] - 3.7) < 1e-9
    ttft = "spanwatch_llm_time_to_first_token_seconds_bucket"
    assert got[(ttft, (("le", "0.04"),))] == 1 and got[(ttft, (("le", "0.5"),))] == 3


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of the one series these tests feed, keyed by name and non-series labels."""
    from prometheus_client.parser import text_string_to_metric_families

    series = {"layer": "app", "model": "m", "operation": "chat", "service": "svc"}
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if all(s.labels.get(k) == v for k, v in series.items()):
                rest = tuple(sorted((k, v) for k, v in s.labels.items() if k not in series))
                out[(s.name, rest)] = s.value
    return out


def test_window_totals_are_bounded() -> None:
    from spanwatch.runtime.prom import WindowTotals

    totals = WindowTotals(WindowSpec.parse("10s"), max_series=2)
    for model in ("a", "b", "c"):
        closed = _closed(10, "10s", [0.1], model)
        totals.on_window_closed(closed, closed.to_record({"model": model}))
    assert [dict(k)["model"] for k in totals.series] == ["b", "c"]


def test_dependency_series_get_dependency_gauges_not_llm_ones() -> None:
    latest = LatestWindows()
    rec = _record(20, 0.5)
    rec["series"] = {**rec["series"], "layer": "dependency", "model": ""}
    latest.add(rec)
    reg = CollectorRegistry()
    reg.register(SpanwatchCollector(latest, IngestStats()))
    text = generate_latest(reg).decode()
    labels = 'layer="dependency",model="",operation="chat",service="svc",window="10s"'
    assert f"spanwatch_dependency_requests_per_second{{{labels}}} 0.1" in text
    assert "spanwatch_dependency_latency_seconds{" in text
    assert "spanwatch_llm_requests_per_second{" not in text
    assert "spanwatch_llm_tokens_per_second{" not in text
