"""The values a threshold or absence rule can watch, by the window record they come from.

Golden-signal windows (``spanwatch.metrics``): ``<ttft|tpot|latency|queue>_<p50|p90|p95|p99|
mean|min|max>`` in seconds, ``error_rate``, ``errors``, ``requests``, ``request_rate``,
``streaming_share``, ``input_tokens``, ``output_tokens``, ``input_tokens_per_s``,
``output_tokens_per_s``. Token windows (``spanwatch.tokens``, rules with ``entity:``):
``tokens_per_min``, ``total_tokens``, ``input_tokens``, ``output_tokens``, ``cost``,
``cost_per_min``, ``requests``, ``unpriced_requests``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Extract = Callable[[dict[str, Any]], float | None]


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
    cost = rec.get("cost")
    return float(sum(cost.values())) if isinstance(cost, dict) and cost else None


def _per_min(extract: Extract) -> Extract:
    def get(rec: dict[str, Any]) -> float | None:
        v, size = extract(rec), rec.get("window", {}).get("size_s")
        return v / size * 60 if v is not None and size else None

    return get


METRICS: dict[str, tuple[Extract, str]] = {
    f"{d}_{s}": (_dist(d, s), "s")
    for d in ("ttft", "tpot", "latency", "queue")
    for s in ("p50", "p90", "p95", "p99", "mean", "min", "max")
}
METRICS.update(
    {
        "error_rate": (_field("error_rate"), "ratio"),
        "errors": (_field("errors"), ""),
        "requests": (_field("count"), ""),
        "request_rate": (_field("rate_per_s"), "/s"),
        "streaming_share": (_field("streaming_share"), "ratio"),
        "input_tokens": (_field("input_tokens"), "tokens"),
        "output_tokens": (_field("output_tokens"), "tokens"),
        "input_tokens_per_s": (_field("input_tokens_per_s"), "tokens/s"),
        "output_tokens_per_s": (_field("output_tokens_per_s"), "tokens/s"),
    }
)
TOKENS: dict[str, tuple[Extract, str]] = {
    "tokens_per_min": (_per_min(_field("total_tokens")), "tokens/min"),
    "total_tokens": (_field("total_tokens"), "tokens"),
    "input_tokens": (_field("input_tokens"), "tokens"),
    "output_tokens": (_field("output_tokens"), "tokens"),
    "cost": (_cost, ""),
    "cost_per_min": (_per_min(_cost), "/min"),
    "requests": (_field("requests"), ""),
    "unpriced_requests": (_field("unpriced_requests"), ""),
}


def top_contributors(rec: dict[str, Any], n: int = 3) -> list[dict[str, Any]]:
    """What an alert can name as the cause: error types, else where the time went."""
    errors = rec.get("errors_by_type") or {}
    if errors:
        return [
            {"name": k, "value": v}
            for k, v in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        ]
    share = rec.get("time_share") or {}
    return [
        {"name": k, "value": round(v, 3)}
        for k, v in sorted(share.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    ]


def example_trace(rec: dict[str, Any], signal: str) -> str | None:
    ex = rec.get("exemplars") or {}
    if signal.startswith("error") and ex.get("error_trace_id"):
        return str(ex["error_trace_id"])
    return ex.get("slowest_trace_id") or ex.get("error_trace_id")
