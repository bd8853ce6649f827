"""The values of closed windows that later stages watch: one catalog for anomaly detection and
alert rules, so both read a value by the same name, from the same field, in the same unit.

Golden-signal windows (``spanwatch.metrics``, :data:`METRICS`): ``<ttft|tpot|latency|queue>_
<p50|p90|p95|p99|mean|min|max>`` in seconds, ``error_rate``, ``errors``, ``requests``,
``request_rate``, ``streaming_share``, ``input_tokens``, ``output_tokens``,
``input_tokens_per_s``, ``output_tokens_per_s``, ``cache_hit_ratio`` (cached input tokens
per input token of the calls that report cache use), ``no_first_token`` (streamed calls
that ended with no first token and no output), ``no_response`` (gateway, app and agent
spans that timed out with no LLM call below them), ``preemptions`` (model-server requests
preempted by vLLM or retracted by SGLang), ``critical_path_s`` (workflow nodes: time on their
run's critical path); from the engine windows (``spanwatch.engine``, read by the same rules):
``requests_running_<mean|max>``, ``requests_waiting_<mean|max>``, ``kv_cache_usage_<mean|max>``
(vLLM / SGLang gauges, :mod:`pipeline.engine`); from the prompt-cluster windows
(``spanwatch.clusters``): ``clusters``, ``new_clusters``, ``cluster_drift``,
``largest_cluster_share`` (:mod:`pipeline.clusters`); from the judge-label windows
(``spanwatch.labels``): ``judged`` and ``label_share:<label>`` for any label
(:mod:`pipeline.clusters.labels`). Token windows (``spanwatch.tokens``,
:data:`TOKENS`): ``tokens_per_min``, ``total_tokens``, ``input_tokens``, ``output_tokens``,
``cost``, ``cost_per_min``, ``requests``, ``unpriced_requests``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..engine.gauges import ENGINE_GAUGES

Extract = Callable[[dict[str, Any]], float | None]


@dataclass(frozen=True)
class WindowValue:
    """A value read off a closed window record (``None`` when the window has none)."""

    name: str
    source: str  # "metrics" (golden-signal windows) or "tokens" (token windows)
    unit: str
    extract: Extract
    field: str = ""  # the record field it is read from as is ("" when it is derived)


def _field(name: str) -> Extract:
    def get(rec: dict[str, Any]) -> float | None:
        v = rec.get(name)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return get


def _dist(name: str, stat: str) -> Extract:
    def get(rec: dict[str, Any]) -> float | None:
        d = rec.get(f"{name}_s")
        v = d.get(stat) if isinstance(d, dict) else None
        return float(v) if isinstance(v, (int, float)) else None

    return get


def _cost(rec: dict[str, Any]) -> float | None:
    cost = rec.get("cost")  # one currency per model; several add up
    return float(sum(cost.values())) if isinstance(cost, dict) and cost else None


def _per_min(extract: Extract) -> Extract:
    def get(rec: dict[str, Any]) -> float | None:
        v, size = extract(rec), rec.get("window", {}).get("size_s")
        return v / size * 60 if v is not None and size else None

    return get


def _plain(name: str, unit: str) -> tuple[Extract, str, str]:
    """A value that is a record field as is."""
    return _field(name), unit, name


def _catalog(
    source: str, values: dict[str, tuple[Extract, str] | tuple[Extract, str, str]]
) -> dict[str, WindowValue]:
    out = {}
    for name, spec in values.items():
        extract, unit, field = spec if len(spec) == 3 else (*spec, "")
        out[name] = WindowValue(name, source, unit, extract, field)
    return out


LABEL_SHARE = "label_share:"  # + a judge's label: that label's share of the judged calls
MIN_JUDGED = 5  # a share of fewer judged calls says too little to alert on: no value


def _share(label: str) -> Extract:
    def get(rec: dict[str, Any]) -> float | None:
        shares, judged = rec.get("label_share"), rec.get("judged")
        if (
            not isinstance(shares, dict)
            or not isinstance(judged, (int, float))
            or judged < MIN_JUDGED
        ):
            return None
        return float(shares.get(label, 0.0))

    return get


class _WithLabels(dict[str, WindowValue]):
    """The golden-signal-shaped catalog; it also answers ``label_share:<label>`` (judge-label
    windows, ``spanwatch.labels``) for any label."""

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or _label(name) is not None

    def __missing__(self, name: str) -> WindowValue:
        label = _label(name)
        if label is None:
            raise KeyError(name)
        return WindowValue(name, "metrics", "ratio", _share(label))


def _label(name: object) -> str | None:
    if isinstance(name, str) and name.startswith(LABEL_SHARE) and len(name) > len(LABEL_SHARE):
        return name[len(LABEL_SHARE) :]
    return None


METRICS: dict[str, WindowValue] = _WithLabels(
    _catalog(
        "metrics",
        {
            **{
                f"{d}_{s}": (_dist(d, s), "s")
                for d in ("ttft", "tpot", "latency", "queue")
                for s in ("p50", "p90", "p95", "p99", "mean", "min", "max")
            },
            "error_rate": _plain("error_rate", "ratio"),
            "errors": _plain("errors", ""),
            "requests": _plain("count", ""),
            "request_rate": _plain("rate_per_s", "/s"),
            "streaming_share": _plain("streaming_share", "ratio"),
            "input_tokens": _plain("input_tokens", "tokens"),
            "output_tokens": _plain("output_tokens", "tokens"),
            "input_tokens_per_s": _plain("input_tokens_per_s", "tokens/s"),
            "output_tokens_per_s": _plain("output_tokens_per_s", "tokens/s"),
            "cache_hit_ratio": _plain("cache_hit_ratio", "ratio"),
            "no_first_token": _plain("no_first_token", ""),
            "no_response": _plain("no_response", ""),
            "preemptions": _plain("preemptions", ""),
            "critical_path_s": _plain("critical_path_s", "s"),
            # inference-engine gauges (spanwatch.engine windows, read like golden-signal ones)
            **{
                f"{g}_{stat}": _plain(f"{g}_{stat}", "ratio" if g == "kv_cache_usage" else "")
                for g in ENGINE_GAUGES
                for stat in ("mean", "max")
            },
            # prompt clusters per application (spanwatch.clusters windows)
            "clusters": _plain("clusters", ""),
            "new_clusters": _plain("new_clusters", ""),
            "cluster_drift": _plain("cluster_drift", "ratio"),
            "largest_cluster_share": _plain("largest_cluster_share", "ratio"),
            "judged": _plain("judged", ""),
        },
    )
)
TOKENS: dict[str, WindowValue] = _catalog(
    "tokens",
    {
        "tokens_per_min": (_per_min(_field("total_tokens")), "tokens/min"),
        "total_tokens": _plain("total_tokens", "tokens"),
        "input_tokens": _plain("input_tokens", "tokens"),
        "output_tokens": _plain("output_tokens", "tokens"),
        "cost": (_cost, ""),
        "cost_per_min": (_per_min(_cost), "/min"),
        "requests": _plain("requests", ""),
        "unpriced_requests": _plain("unpriced_requests", ""),
    },
)
