"""What a threshold or absence rule watches and what an alert names: the values of closed
windows (the catalog in :mod:`pipeline.windows.values`, shared with anomaly detection: golden-signal
windows for rules without ``entity:``, token windows for rules with it), the top contributors
and an example trace of a window."""

from __future__ import annotations

from typing import Any

from ..windows.values import METRICS, TOKENS, Extract, WindowValue

__all__ = ["METRICS", "TOKENS", "Extract", "WindowValue", "example_trace", "top_contributors"]


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
    new = rec.get("new") or []  # a prompt-cluster window: a trace of the first new cluster
    if signal == "new_clusters" and new:
        return new[0].get("example_trace_id") or None
    ex = rec.get("exemplars") or {}
    if signal.startswith("error") and ex.get("error_trace_id"):
        return str(ex["error_trace_id"])
    return ex.get("slowest_trace_id") or ex.get("error_trace_id")
