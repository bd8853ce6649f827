"""Inference-engine state from the OTLP metrics that vLLM and SGLang export.

vLLM and SGLang publish their scheduler and cache state as Prometheus gauges; a collector's
``prometheus`` receiver scrapes them and its Kafka exporter writes them, as OTLP
``MetricsData``, to their own topic (``otlp_metrics`` by default). Each gauge data point
becomes an :class:`EngineSample` of one engine series: the resource's ``service.name`` (the
scrape job) and the point's ``model_name`` label. Windows hold, per gauge, how many samples,
their sum and their largest value (:class:`EngineAggregate`); the ``spanwatch.engine`` record of
a closed window has ``<gauge>_mean`` and ``<gauge>_max`` for each gauge seen.

Gauges read (both spellings: the receiver keeps ``vllm:x``; some pipelines rewrite it ``vllm_x``):

- ``requests_running``: ``vllm:num_requests_running``, ``sglang:num_running_reqs``;
- ``requests_waiting``: ``vllm:num_requests_waiting``, ``sglang:num_queue_reqs``;
- ``kv_cache_usage`` (0..1): ``vllm:kv_cache_usage_perc`` (v1), ``vllm:gpu_cache_usage_perc``
  (v0), ``sglang:token_usage``.

A sample is merged at its series' owner like a span's partial
(:mod:`pipeline.windows.preaggregate`):
sums are integers (micro-units), so one worker and N workers close identical windows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData

from ..common.errors import DecodeError
from ..common.settings import Duration, SettingsModel
from ..ingest.otlp import any_value, proto_attrs

GAUGES: dict[str, str] = {
    "vllm:num_requests_running": "requests_running",
    "vllm:num_requests_waiting": "requests_waiting",
    "vllm:kv_cache_usage_perc": "kv_cache_usage",
    "vllm:gpu_cache_usage_perc": "kv_cache_usage",
    "sglang:num_running_reqs": "requests_running",
    "sglang:num_queue_reqs": "requests_waiting",
    "sglang:token_usage": "kv_cache_usage",
}
_BY_NAME = {**GAUGES, **{k.replace(":", "_"): v for k, v in GAUGES.items()}}
ENGINE_GAUGES = ("requests_running", "requests_waiting", "kv_cache_usage")
MODEL_LABELS = ("model_name", "model", "gen_ai.request.model")
MICRO = 1_000_000
NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK


@dataclass(frozen=True)
class EngineSample:
    """One gauge reading of one engine (``gauge`` is one of :data:`ENGINE_GAUGES`)."""

    service: str
    model: str
    gauge: str
    t_ns: int
    value: float


def engine_series_id(service: str, model: str) -> str:
    """The partials key of an engine series (kept apart from span series and token entities)."""
    return orjson.dumps(["@engine", service, model]).decode()


def decode_metrics(value: bytes) -> list[EngineSample]:
    """The engine gauge readings of one OTLP ``MetricsData`` message (protobuf or JSON).

    Metrics spanwatch does not read are skipped; a value that is neither raises
    :class:`DecodeError` (the message goes to the dead-letter topic)."""
    if not value:
        raise DecodeError("empty", "message value is empty")
    data = MetricsData()
    if value[:64].lstrip()[:1] == b"{":
        try:
            json_format.Parse(value.decode("utf-8"), data, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DecodeError("bad_json", str(exc)[:200]) from exc
    else:
        try:
            data.ParseFromString(value)
        except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError("bad_protobuf", str(exc)[:200]) from exc
    out: list[EngineSample] = []
    for rm in data.resource_metrics:
        resource = proto_attrs(rm.resource.attributes)
        service = str(resource.get("service.name") or resource.get("job") or "unknown")
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                gauge = _BY_NAME.get(metric.name)
                if gauge is None:
                    continue
                which = metric.WhichOneof("data")
                if which == "gauge":
                    points: Iterable[Any] = metric.gauge.data_points
                elif which == "sum" and not metric.sum.is_monotonic:
                    points = metric.sum.data_points
                else:
                    continue
                for p in points:
                    v = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                    # a scrape that found no value (flag NO_RECORDED_VALUE, or a NaN stale
                    # marker), or an untimed point, says nothing about the engine
                    if p.flags & NO_RECORDED_VALUE or v != v or p.time_unix_nano <= 0:
                        continue
                    model = ""
                    for kv in p.attributes:
                        if kv.key in MODEL_LABELS:
                            model = str(any_value(kv.value))
                            break
                    out.append(EngineSample(service, model, gauge, p.time_unix_nano, float(v)))
    return out


@dataclass
class GaugeStats:
    """Samples of one gauge in one window: how many, their sum (micro-units), the largest."""

    n: int = 0
    sum_micro: int = 0
    max: float = float("-inf")

    def add(self, v: float) -> None:
        self.n += 1
        self.sum_micro += round(v * MICRO)
        self.max = max(self.max, v)


@dataclass
class EngineAggregate:
    """An engine series in one window (the :class:`~pipeline.windows.aggregate.WindowAggregate`
    contract: exact, order-independent merges)."""

    gauges: dict[str, GaugeStats] = field(default_factory=dict)
    late: int = 0

    @property
    def count(self) -> int:
        return sum(g.n for g in self.gauges.values())

    def add(self, sample: EngineSample) -> None:
        g = self.gauges.get(sample.gauge)
        if g is None:
            g = self.gauges[sample.gauge] = GaugeStats()
        g.add(sample.value)

    def merge(self, other: EngineAggregate) -> None:
        self.late += other.late
        for name, o in other.gauges.items():
            g = self.gauges.get(name)
            if g is None:
                g = self.gauges[name] = GaugeStats()
            g.n += o.n
            g.sum_micro += o.sum_micro
            g.max = max(g.max, o.max)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gauges": {k: [g.n, g.sum_micro, g.max] for k, g in sorted(self.gauges.items())},
            "late": self.late,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineAggregate:
        return cls(
            {
                k: GaugeStats(int(v[0]), int(v[1]), float("-inf") if v[2] is None else float(v[2]))
                for k, v in d["gauges"].items()
            },
            int(d.get("late", 0)),
        )

    def result(self, size_s: float) -> dict[str, Any]:
        """The closed ``spanwatch.engine`` window (docs/SCHEMAS.md)."""
        out: dict[str, Any] = {"samples": self.count, "late": self.late}
        for name, g in sorted(self.gauges.items()):
            if g.n:
                out[f"{name}_mean"] = g.sum_micro / g.n / MICRO
                out[f"{name}_max"] = g.max
        return out


class EngineSettings(SettingsModel):
    """Inference-engine gauges from the collector's metrics topic (``topics.metrics_source``)."""

    enabled: bool = True
    # gauges are scraped and exported in batches (every 10-60 s), well after the spans of the
    # same moment: their windows wait this long past their end before they close
    allowed_lateness: Duration = "60s"
