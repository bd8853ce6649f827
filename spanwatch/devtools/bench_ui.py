"""``spanwatch bench ui``: what one open tab of the web view receives per second.

A dashboard holding ``series`` golden-signal series (each with its anomaly scores) and token
entities is filled to its steady state (``points`` windows per series), then records arrive
as a worker emits them: every 10 s window closes for every series at once, with its scores.
The page is pushed what changed once a second. Printed: the bytes per second of sending a
whole snapshot on every change (before) and of sending deltas (now; also deflated, as the
page's WebSocket carries them), their ratio, and the server's CPU per push for each,
measured in the same run.
"""

from __future__ import annotations

import random
import time
import zlib
from typing import Any

import orjson

from spanwatch.pipeline.view.dashboard import Dashboard, apply_delta

NS = 10**9
WINDOW_S = 10
SIGNALS = ("ttft_p95", "latency_p95", "request_rate")


def _records(series: int, start_s: int, rng: random.Random) -> list[tuple[str, str, Any]]:
    """What the worker emits when the window starting at ``start_s`` closes."""
    out: list[tuple[str, str, Any]] = []
    win = {"name": "10s", "start_ns": start_s * NS, "end_ns": (start_s + WINDOW_S) * NS}
    for i in range(series):
        labels = {
            "service": f"svc-{i % 40}",
            "layer": ("app", "gateway", "model-server")[i % 3],
            "operation": "chat",
            "model": f"model-{i // 40}",
            "dependency": "",
            "node": "",
        }
        key = orjson.dumps(labels).decode()
        ttft = rng.lognormvariate(-1.5, 0.3)
        out.append(
            (
                "metrics",
                key,
                {
                    "series": labels,
                    "window": win,
                    "count": 20,
                    "rate_per_s": 2.0,
                    "errors": 0,
                    "error_rate": 0.0,
                    "ttft_s": {"p50": ttft, "p95": ttft * 2},
                    "tpot_s": {"p50": 0.02, "p95": 0.03},
                    "latency_s": {"p50": ttft * 8, "p95": ttft * 12},
                    "time_share": {"decode": 0.8, "prefill": 0.15, "queue": 0.05},
                    "exemplars": {"slowest_trace_id": f"{rng.getrandbits(128):032x}"},
                },
            )
        )
        for signal in SIGNALS:
            value = rng.random()
            out.append(
                (
                    "anomalies",
                    key,
                    {
                        "type": "score",
                        "signal": signal,
                        "labels": labels,
                        "value": value,
                        "expected": {"low": value * 0.8, "high": value * 1.2},
                        "score": rng.random() * 0.3,
                        "window": win,
                    },
                )
            )
    for u in range(200):
        out.append(
            (
                "tokens",
                f"user-{u}",
                {
                    "type": "window",
                    "entity": {"kind": "user", "id": f"user-{u}"},
                    "window": win,
                    "requests": 3,
                    "input_tokens": rng.randrange(5000),
                    "output_tokens": rng.randrange(800),
                    "cost": {"USD": 0.01},
                },
            )
        )
    return out


def bench_ui(series: int = 1000, points: int = 120, seconds: int = 120, seed: int = 5) -> int:
    rng = random.Random(seed)
    d = Dashboard(points=points, max_series=series)
    t = 1_700_000_000
    for _ in range(points):  # steady state: every series holds `points` windows
        for rec in _records(series, t, rng):
            d.add(*rec)
        t += WINDOW_S
    page = d.snapshot()
    full_bytes = delta_bytes = wire_bytes = pushes = 0
    full_cpu = delta_cpu = 0.0
    pending = _records(series, t, rng)
    for second in range(seconds):
        # a closing window's records reach the view over about two seconds
        if second % WINDOW_S == 0:
            pending = _records(series, t, rng)
            t += WINDOW_S
        for rec in pending[: len(pending) // 2 + 1]:
            d.add(*rec)
        pending = pending[len(pending) // 2 + 1 :]
        if d.version == page["version"]:
            continue
        pushes += 1
        c0 = time.process_time()
        full_bytes += len(orjson.dumps(d.snapshot()))
        c1 = time.process_time()
        delta = d.delta(page["version"])
        assert delta is not None
        data = orjson.dumps(delta)
        c2 = time.process_time()
        delta_bytes += len(data)
        wire_bytes += len(zlib.compress(data))
        apply_delta(page, orjson.loads(data))
        full_cpu += c1 - c0
        delta_cpu += c2 - c1
    snap = len(orjson.dumps(d.snapshot()))
    print(
        f"web view, one tab: {series} series x {points} windows of {WINDOW_S} s, "
        f"{len(SIGNALS)} anomaly scores each, 200 users; {seconds} s, {pushes} pushes"
    )
    print(f"  one whole snapshot: {snap / 1e6:.2f} MB")
    print(
        f"  whole snapshot on every change: {full_bytes / seconds / 1e3:,.0f} KB/s per tab, "
        f"{full_cpu / max(pushes, 1) * 1e3:.1f} ms CPU per push"
    )
    print(
        f"  deltas:                         {delta_bytes / seconds / 1e3:,.1f} KB/s per tab, "
        f"{delta_cpu / max(pushes, 1) * 1e3:.1f} ms CPU per push"
    )
    print(
        f"  deltas, compressed as the page's WebSocket does (permessage-deflate): "
        f"{wire_bytes / seconds / 1e3:,.1f} KB/s per tab"
    )
    print(f"  ratio (whole / deltas): {full_bytes / max(delta_bytes, 1):.0f}x fewer bytes")
    return 0
