"""Inference-engine gauges from the collector's metrics topic (pipeline/engine/gauges.py): decoded
as the collector's prometheus receiver writes vLLM and SGLang metrics, windowed exactly at the
series owner, closed with their own lateness, and read by the shipped rules."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData, NumberDataPoint

from spanwatch.pipeline.alerting.evaluate import RuleEvaluator
from spanwatch.pipeline.alerting.loader import load_rules
from spanwatch.pipeline.common.errors import DecodeError
from spanwatch.pipeline.engine.gauges import decode_metrics
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.merge import WindowOutput
from spanwatch.pipeline.windows.partial import Partial
from spanwatch.pipeline.windows.preaggregate import engine_partials
from spanwatch.pipeline.windows.spec import WindowSpec
from spanwatch.pipeline.windows.state import close_offline
from spanwatch.rules import DEFAULT_RULES_DIR
from tests.builders import merge_stage

NS = 10**9
T0 = 1_700_000_040 * NS  # a multiple of 1 minute
SPECS = (WindowSpec.parse("10s"), WindowSpec.parse("1m"))


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def scrape(
    job: str, t_ns: int, gauges: dict[str, float], model: str = "qwen2.5-72b-instruct"
) -> MetricsData:
    """One scrape as the collector's prometheus receiver turns it into OTLP: the job and
    instance as resource attributes, each gauge a metric with the labels as attributes, and
    counters and histograms beside them (spanwatch skips those)."""
    data = MetricsData()
    rm = data.resource_metrics.add()
    rm.resource.attributes.extend(
        [
            _kv("service.name", job),
            _kv("service.instance.id", "10.0.0.7:8000"),
            _kv("server.address", "10.0.0.7"),
            _kv("url.scheme", "http"),
        ]
    )
    sm = rm.scope_metrics.add()
    sm.scope.name = (
        "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
    )
    for name, value in gauges.items():
        m = sm.metrics.add()
        m.name = name
        p = m.gauge.data_points.add()
        p.time_unix_nano = t_ns
        p.as_double = value
        p.attributes.extend([_kv("model_name", model), _kv("engine", "0")])
    counter = sm.metrics.add()
    counter.name = "vllm:num_preemptions_total"
    c = counter.sum.data_points.add()
    c.time_unix_nano, c.as_double = t_ns, 12.0
    counter.sum.is_monotonic = True
    hist = sm.metrics.add()
    hist.name = "vllm:time_to_first_token_seconds"
    h = hist.histogram.data_points.add()
    h.time_unix_nano, h.count = t_ns, 3
    return data


def test_vllm_and_sglang_gauges_decode_from_protobuf_and_json() -> None:
    vllm = scrape(
        "vllm-qwen",
        T0,
        {
            "vllm:num_requests_running": 31,
            "vllm:num_requests_waiting": 12,
            "vllm:kv_cache_usage_perc": 0.83,
            "vllm:lora_requests_info": 1,  # a gauge spanwatch does not read
        },
    )
    got = decode_metrics(vllm.SerializeToString())
    assert {(s.service, s.model, s.gauge, s.value) for s in got} == {
        ("vllm-qwen", "qwen2.5-72b-instruct", "requests_running", 31.0),
        ("vllm-qwen", "qwen2.5-72b-instruct", "requests_waiting", 12.0),
        ("vllm-qwen", "qwen2.5-72b-instruct", "kv_cache_usage", 0.83),
    }
    assert all(s.t_ns == T0 for s in got)
    # the same batch as OTLP JSON (the exporter's otlp_json encoding)
    as_json = json_format.MessageToJson(vllm).encode()
    assert sorted(decode_metrics(as_json), key=repr) == sorted(got, key=repr)
    sglang = scrape(
        "sglang-deepseek",
        T0,
        # v0 vLLM spelled the cache gauge differently; a pipeline may rewrite ':' to '_'
        {"sglang:num_queue_reqs": 4, "sglang_token_usage": 0.5, "vllm:gpu_cache_usage_perc": 0.2},
        model="deepseek-v3",
    )
    assert {(s.gauge, s.value) for s in decode_metrics(sglang.SerializeToString())} == {
        ("requests_waiting", 4.0),
        ("kv_cache_usage", 0.5),
        ("kv_cache_usage", 0.2),
    }


def test_stale_markers_and_bad_messages() -> None:
    data = scrape("vllm-qwen", T0, {"vllm:num_requests_waiting": float("nan")})
    p: NumberDataPoint = data.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
    assert decode_metrics(data.SerializeToString()) == []  # a NaN stale marker
    p.as_double, p.flags = 3.0, 1  # no recorded value
    assert decode_metrics(data.SerializeToString()) == []
    with pytest.raises(DecodeError) as bad:
        decode_metrics(b"\x0a\xff\xff\xff")
    assert bad.value.reason == "bad_protobuf"
    with pytest.raises(DecodeError) as bad_json:
        decode_metrics(b'{"resourceMetrics": [{"resource": 7}]}')
    assert bad_json.value.reason == "bad_json"
    with pytest.raises(DecodeError):
        decode_metrics(b"")


def _partials(
    readings: list[tuple[int, float]], partition: int = 0, gauge: str = "vllm:num_requests_waiting"
) -> list[Partial]:
    out = []
    for off, (t, v) in enumerate(readings):
        samples = decode_metrics(scrape("vllm-qwen", t, {gauge: v}).SerializeToString())
        out += engine_partials(partition, off, samples, SPECS)
    return out


def test_windows_hold_mean_and_max_and_merge_in_any_order() -> None:
    readings = [(T0 + i * 2 * NS, float(v)) for i, v in enumerate([1, 3, 20, 8, 2, 0, 5])]
    p0, p1 = _partials(readings[:4]), _partials(readings[4:], partition=1)
    closed = close_offline(p0 + p1)
    # the owner sees each source partition in order, the two in any interleaving
    assert [c.aggregate.to_dict() for c in close_offline(p1 + p0)] == [
        c.aggregate.to_dict() for c in closed
    ]
    out = WindowOutput(SeriesKeyer(("service", "model")), smallest="10s")
    records = [out.record(c) for c in closed]
    assert {topic for topic, _ in records} == {"engine"}
    by_window = {(r["window"]["name"], r["window"]["start_ns"]): r for _, r in records}
    first = by_window[("10s", T0)]  # readings at 0, 2, 4, 6, 8 s
    assert first["series"] == {
        "layer": "engine",
        "service": "vllm-qwen",
        "model": "qwen2.5-72b-instruct",
    }
    assert first["requests_waiting_max"] == 20.0
    assert first["requests_waiting_mean"] == pytest.approx((1 + 3 + 20 + 8 + 2) / 5)
    assert first["samples"] == 5
    assert by_window[("10s", T0 + 10 * NS)]["requests_waiting_max"] == 5.0
    assert by_window[("1m", T0)]["samples"] == 7


def test_engine_windows_wait_their_own_lateness_at_the_owner() -> None:
    stage = merge_stage(lateness_ns=5 * NS, lateness_by_kind={"engine": 60 * NS})
    stage.apply_bundle(0, _partials([(T0 + NS, 4.0)]))
    # span windows of [T0, T0+10s) would close now; the engine's wait for its scrapes
    assert stage.apply_watermark(0, 0, T0 + 20 * NS, 1) == []
    late = _partials([(T0 + 3 * NS, 9.0)], partition=1)  # a scrape exported 15 s later
    stage.apply_bundle(0, late)
    closed = stage.apply_watermark(0, 0, T0 + 75 * NS, 1)
    ten = [c for c in closed if c.spec.name == "10s"]
    assert len(ten) == 1 and ten[0].aggregate.result(10)["requests_waiting_max"] == 9.0


def _record(gauge: str, value: float, minute: int) -> dict[str, Any]:
    return {
        "series": {"layer": "engine", "service": "vllm-qwen", "model": "qwen"},
        "window": {
            "name": "1m",
            "start_ns": T0 + minute * 60 * NS,
            "end_ns": T0 + (minute + 1) * 60 * NS,
        },
        f"{gauge}_max": value,
        f"{gauge}_mean": value / 2,
        "samples": 6,
    }


def test_shipped_rules_read_engine_windows_and_keep_llm_rules_off_them() -> None:
    ev = RuleEvaluator(load_rules([DEFAULT_RULES_DIR]))  # the files workers load by default
    names = {s.rule for s in ev.samples("metrics", _record("requests_waiting", 30, 0))}
    assert "EngineQueueBackedUp" in names
    assert "LlmTrafficStopped" not in names and "HighErrorRate" not in names
    breach = [s for s in ev.samples("metrics", _record("kv_cache_usage", 0.99, 0)) if s.breach]
    assert [s.rule for s in breach] == ["KvCacheNearlyFull"]
    assert orjson.dumps(breach[0].value) == b"0.99"


def test_a_deployment_without_a_metrics_topic_runs_with_engine_gauges_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from types import SimpleNamespace

    from spanwatch.pipeline.config import Settings
    from spanwatch.runtime.worker import without_missing_metrics_topic

    def admin(*names: str) -> Any:
        found = {n: SimpleNamespace(error=None, partitions={0: None}) for n in names}
        return SimpleNamespace(list_topics=lambda timeout: SimpleNamespace(topics=found))

    settings = Settings()
    assert without_missing_metrics_topic(settings, admin("otlp_spans", "otlp_metrics")) is settings
    with caplog.at_level("WARNING", logger="spanwatch.worker"):
        off = without_missing_metrics_topic(settings, admin("otlp_spans"))
    assert not off.engine.enabled and settings.engine.enabled
    assert "engine gauges off: topic 'otlp_metrics' not found" in caplog.text
