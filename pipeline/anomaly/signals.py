"""Which values of the closed windows are watched, and the default detector of each.

Defaults (chosen with ``spanwatch bench anomaly`` on public labelled series and on the
generated LLM scenarios, docs/ANOMALY.md): ``auto`` (seasonal models chosen per series,
scores calibrated on each series' own tail) everywhere but the error rate:

* latencies (TTFT, TPOT, end-to-end, queue p95): upward only (faster is not an incident),
  and a doubling is always big (``big_change: 1``), however often it happens;
* error rate is a proportion: binomial-floored EW baseline, upward only;
* request rate: both ways (a drop to zero is an outage);
* token and cost rates: upward (a runaway agent); x3 is big.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _p95(name: str) -> Callable[[dict[str, Any]], float | None]:
    def get(rec: dict[str, Any]) -> float | None:
        dist = rec.get(name)
        return dist.get("p95") if isinstance(dist, dict) else None

    return get


def _error_rate(rec: dict[str, Any]) -> float | None:
    return rec.get("error_rate") if rec.get("count", 0) >= 5 else None  # too few to judge


def _per_min(field: str) -> Callable[[dict[str, Any]], float | None]:
    def get(rec: dict[str, Any]) -> float | None:
        size = rec["window"]["size_s"]
        v = rec.get(field)
        return v / size * 60 if isinstance(v, (int, float)) and size else None

    return get


def _cost_per_min(rec: dict[str, Any]) -> float | None:
    cost = rec.get("cost") or {}
    size = rec["window"]["size_s"]
    return sum(cost.values()) / size * 60 if cost and size else None  # one currency per model


@dataclass(frozen=True)
class Signal:
    name: str
    source: str  # "metrics" (golden-signal windows) or "tokens" (token windows)
    unit: str
    extract: Callable[[dict[str, Any]], float | None]


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("ttft_p95", "metrics", "s", _p95("ttft_s")),
        Signal("tpot_p95", "metrics", "s", _p95("tpot_s")),
        Signal("latency_p95", "metrics", "s", _p95("latency_s")),
        Signal("queue_p95", "metrics", "s", _p95("queue_s")),
        Signal("error_rate", "metrics", "ratio", _error_rate),
        Signal("request_rate", "metrics", "1/s", lambda r: r.get("rate_per_s")),
        Signal("tokens_per_min", "tokens", "tokens/min", _per_min("total_tokens")),
        Signal("cost_per_min", "tokens", "currency/min", _cost_per_min),
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
    "tokens_per_min": _BURSTY,
    "cost_per_min": _BURSTY,
}
DEFAULT_DETECTOR: dict[str, Any] = {"detector": "auto"}  # a series of unknown kind
