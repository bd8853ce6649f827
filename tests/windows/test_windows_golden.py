"""Golden case: a fixed OTLP capture in, the expected closed windows out.

Regenerate with ``python -m tests.support.make_golden`` and review the diff of
``tests/testdata/windows_case/expected.jsonl``.
"""

from __future__ import annotations

import json

from tests.support.make_golden import WINDOWS_CASE, windows_expected, windows_inputs


def test_fixed_capture_gives_the_expected_closed_windows() -> None:
    inputs = windows_inputs()
    assert len(inputs) == 8
    assert windows_expected(inputs) == (WINDOWS_CASE / "expected.jsonl").read_text()


def test_golden_windows_are_consistent_with_their_input() -> None:
    records = [json.loads(line) for line in (WINDOWS_CASE / "expected.jsonl").open()]
    signals = [r for r in records if "series" in r and r["window"]["name"] == "10s"]
    tokens = [r for r in records if r.get("type") == "window" and r["window"]["name"] == "10s"]
    by_model = sum(r["total_tokens"] for r in tokens if r["entity"]["kind"] == "model")
    by_user = sum(r["total_tokens"] for r in tokens if r["entity"]["kind"] == "user")
    assert by_model == by_user > 0  # every counted call has a user in this capture
    assert {r["series"]["layer"] for r in signals} >= {
        "gateway",
        "agent",
        "app",
        "tool",
        "model-server",
    }
    server = [r for r in signals if r["series"]["layer"] == "model-server"]
    assert all(
        r["ttft_share"]["queue"] + r["ttft_share"]["prefill"] <= 1.0001
        for r in server
        if r.get("ttft_share")
    )


def test_a_lagging_partition_is_not_idle() -> None:
    """Records waiting to be read (consumer lag, a rebalance pause) keep the watermark where
    the data is: the wall clock only moves it once the partition is caught up and quiet."""
    from spanwatch.pipeline.windows.spec import PartitionClock

    now = [1_000 * 10**9]
    clock = PartitionClock(
        allowed_lateness_ns=5 * 10**9, idle_timeout_ns=10 * 10**9, wall_ns=lambda: now[0]
    )
    clock.touch()
    clock.observe(990 * 10**9)
    now[0] += 60 * 10**9
    assert clock.current(backlog=True) == 990 * 10**9  # a minute without messages, lagging
    now[0] += 9 * 10**9
    assert clock.current() == 990 * 10**9  # caught up 9 s ago: not idle yet
    now[0] += 2 * 10**9
    assert clock.current() == now[0] - 15 * 10**9  # idle: follows the clock
