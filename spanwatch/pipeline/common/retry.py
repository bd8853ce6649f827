"""Retry and back-off decisions, one home for every outbound call (webhooks, the judge).

What is worth retrying follows HTTP semantics and what Alertmanager's notifiers do: a 5xx,
408 Request Timeout, 425 Too Early and 429 Too Many Requests are transient; any other 4xx
means the request itself is wrong (URL, token, model), and repeating it cannot help. Timeouts
and connection errors are transient. Back-off is exponential with jitter, capped.
"""

from __future__ import annotations

import random

TRANSIENT_4XX = frozenset({408, 425, 429})


def retryable_status(code: int) -> bool:
    """Whether an HTTP status is worth another attempt."""
    return code >= 500 or code in TRANSIENT_4XX


def backoff_s(
    attempt: int,
    base: float,
    cap: float = 300.0,
    *,
    rng: random.Random | None = None,
    key: str | None = None,
) -> float:
    """Delay before retry number ``attempt`` (1 = the first retry): ``base * 2**(attempt-1)``,
    capped at ``cap``, times a jitter factor in [0.5, 1.5). The jitter comes from ``rng``, or is
    deterministic per ``key`` (the same notification waits the same after a restart), or is
    drawn from the module's generator."""
    if rng is None:
        rng = random.Random(f"{key}:{attempt}") if key is not None else random.Random()
    return float(min(base * 2.0 ** (attempt - 1), cap) * rng.uniform(0.5, 1.5))
