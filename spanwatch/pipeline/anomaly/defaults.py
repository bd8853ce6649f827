"""Which values of the closed windows are watched, and the default detector of each.

Defaults (chosen with ``spanwatch bench anomaly`` on public labelled series and on the
generated LLM scenarios, docs/ANOMALY.md): ``auto`` (seasonal models chosen per series,
scores calibrated on each series' own tail) everywhere but the error rate:

* latencies (TTFT, TPOT, end-to-end, queue p95): upward only (faster is not an incident),
  and a doubling is always big (``big_change: 1``), however often it happens;
* error rate is a proportion: binomial-floored EW baseline, upward only;
* request rate: both ways (a drop to zero is an outage);
* token and cost rates: upward (a runaway agent); x3 is big;
* prefix / KV cache hit ratio: downward (a cache that stopped hitting costs prefill time and
  money), judged on windows of at least 5 calls.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..windows.values import METRICS, TOKENS, WindowValue

Signal = WindowValue  # a watched value of the catalog


def _judged_from(count: int, value: WindowValue) -> WindowValue:
    """``value`` only for windows of at least ``count`` requests: a rate of too few calls is
    not something to judge."""

    def get(rec: dict[str, Any]) -> float | None:
        return value.extract(rec) if rec.get("count", 0) >= count else None

    return replace(value, extract=get)


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        METRICS["ttft_p95"],
        METRICS["tpot_p95"],
        METRICS["latency_p95"],
        METRICS["queue_p95"],
        _judged_from(5, METRICS["error_rate"]),
        METRICS["request_rate"],
        _judged_from(5, METRICS["cache_hit_ratio"]),
        METRICS["requests_waiting_max"],  # engine windows
        METRICS["kv_cache_usage_max"],
        TOKENS["tokens_per_min"],
        TOKENS["cost_per_min"],
    )
}

_LATENCY = {"detector": "auto", "side": "up", "big_change": 1.0}
_BURSTY = {"detector": "auto", "side": "up"}
DEFAULT_DETECTORS: dict[str, dict[str, Any]] = {
    "ttft_p95": _LATENCY,
    "tpot_p95": _LATENCY,
    "latency_p95": _LATENCY,
    "queue_p95": {**_LATENCY, "min_abs_spread": 0.02},  # ~20 ms: queues are often empty
    "error_rate": {"detector": "proportion"},
    "request_rate": {"detector": "auto", "side": "both"},
    "cache_hit_ratio": {"detector": "auto", "side": "down"},
    # an engine's queue and KV cache: a waiting request or two, a few % of cache, is noise
    "requests_waiting_max": {"detector": "auto", "side": "up", "min_abs_spread": 2.0},
    "kv_cache_usage_max": {"detector": "auto", "side": "up", "min_abs_spread": 0.05},
    "tokens_per_min": _BURSTY,
    "cost_per_min": _BURSTY,
}
DEFAULT_DETECTOR: dict[str, Any] = {"detector": "auto"}  # a series of unknown kind
