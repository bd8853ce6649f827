"""Prometheus exposition of the latest closed windows and worker counters."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from pipeline.ingest import IngestStats
from pipeline.partials import ClosedWindow
from pipeline.signals import SignalAggregate
from pipeline.spans import Layer, LlmSpan
from pipeline.windows import WindowSpec
from spanwatch.prom import LatestWindows, SpanwatchCollector


def _record(end_offset_s: int, ttft: float) -> dict[str, object]:
    agg = SignalAggregate()
    span = LlmSpan(
        "a" * 32,
        "b" * 16,
        "",
        "chat",
        "svc",
        Layer.APP,
        "chat",
        "client",
        0,
        10**9,
        1.0,
        "ok",
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
    assert "user" not in text  # no per-user labels


def test_latest_windows_is_bounded() -> None:
    latest = LatestWindows(max_entries=2)
    for i in range(3):
        rec = _record(10, 0.1)
        rec["series"] = {"service": f"s{i}"}
        latest.add(rec)
    assert len(latest.records) == 2
