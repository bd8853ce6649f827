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
run's critical path). Token windows (``spanwatch.tokens``,
:data:`TOKENS`): ``tokens_per_min``, ``total_tokens``, ``input_tokens``, ``output_tokens``,
``cost``, ``cost_per_min``, ``requests``, ``unpriced_requests``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Extract = Callable[[dict[str, Any]], float | None]


@dataclass(frozen=True)
class WindowValue:
    """A value read off a closed window record (``None`` when the window has none)."""

    name: str
    source: str  # "metrics" (golden-signal windows) or "tokens" (token windows)
    unit: str
    extract: Extract


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


def _catalog(source: str, values: dict[str, tuple[Extract, str]]) -> dict[str, WindowValue]:
    return {name: WindowValue(name, source, unit, ex) for name, (ex, unit) in values.items()}


METRICS: dict[str, WindowValue] = _catalog(
    "metrics",
    {
        **{
            f"{d}_{s}": (_dist(d, s), "s")
            for d in ("ttft", "tpot", "latency", "queue")
            for s in ("p50", "p90", "p95", "p99", "mean", "min", "max")
        },
        "error_rate": (_field("error_rate"), "ratio"),
        "errors": (_field("errors"), ""),
        "requests": (_field("count"), ""),
        "request_rate": (_field("rate_per_s"), "/s"),
        "streaming_share": (_field("streaming_share"), "ratio"),
        "input_tokens": (_field("input_tokens"), "tokens"),
        "output_tokens": (_field("output_tokens"), "tokens"),
        "input_tokens_per_s": (_field("input_tokens_per_s"), "tokens/s"),
        "output_tokens_per_s": (_field("output_tokens_per_s"), "tokens/s"),
        "cache_hit_ratio": (_field("cache_hit_ratio"), "ratio"),
        "no_first_token": (_field("no_first_token"), ""),
        "no_response": (_field("no_response"), ""),
        "preemptions": (_field("preemptions"), ""),
        "critical_path_s": (_field("critical_path_s"), "s"),
    },
)
TOKENS: dict[str, WindowValue] = _catalog(
    "tokens",
    {
        "tokens_per_min": (_per_min(_field("total_tokens")), "tokens/min"),
        "total_tokens": (_field("total_tokens"), "tokens"),
        "input_tokens": (_field("input_tokens"), "tokens"),
        "output_tokens": (_field("output_tokens"), "tokens"),
        "cost": (_cost, ""),
        "cost_per_min": (_per_min(_cost), "/min"),
        "requests": (_field("requests"), ""),
        "unpriced_requests": (_field("unpriced_requests"), ""),
    },
)
