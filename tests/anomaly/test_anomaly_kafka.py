"""The anomaly agent from Kafka: closed windows in, scores out, equal to the backtest command
on the same series, and learning survives a worker restart (state in a faust table)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import orjson
import pytest

from spanwatch.commands.anomaly import backtest
from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import WorkerProc, consume_until, produce
from spanwatch.pipeline.anomaly.defaults import DEFAULT_DETECTORS
from spanwatch.pipeline.config import TopicSettings

pytestmark = pytest.mark.broker
CONFIG = """
metrics: {enabled: false}
tokens: {enabled: false}
stitch: {enabled: false}
safety: {enabled: false}
worker: {stats_interval_s: 0.5}
"""
T0 = 1_790_000_000
SERIES = {"service": "chat", "layer": "app", "operation": "chat", "model": "qwen-max"}
KEY = orjson.dumps(list(SERIES.values()))


def window(i: int, ttft: float) -> bytes:
    end = (T0 + (i + 1) * 60) * 10**9
    return orjson.dumps(
        {
            "series": SERIES,
            "window": {
                "name": "1m",
                "start_ns": end - 60 * 10**9,
                "end_ns": end,
                "size_s": 60.0,
                "step_s": 60.0,
            },
            "count": 50,
            "error_rate": 0.0,
            "rate_per_s": 0.8,
            "ttft_s": {"p95": ttft},
        }
    )


def scores(got: list) -> dict[int, float]:  # type: ignore[type-arg]
    out: dict[int, float] = {}
    for m in got:
        r = orjson.loads(m.value())
        if r["type"] == "score" and r["signal"] == "ttft_p95":  # the default signals all run
            out[r["window"]["end_ns"] // 10**9] = r["score"]
    return out


def test_agent_scores_match_the_backtest_across_a_restart(tmp_path: Path) -> None:
    rng = random.Random(3)
    values = [0.8 * (1 + 0.08 * rng.gauss(0, 1)) for _ in range(90)] + [3.5, 3.6, 0.8]
    config = tmp_path / "sw.yaml"
    config.write_text(CONFIG)
    out = io.StringIO()
    backtest(
        io.StringIO(
            "timestamp,value\n"
            + "".join(f"{T0 + (i + 1) * 60},{v!r}\n" for i, v in enumerate(values))
        ),
        out,
        dict(DEFAULT_DETECTORS["ttft_p95"]),
    )
    expected = {
        int(r.split(",")[0]): float(r.split(",")[2]) for r in out.getvalue().splitlines()[1:]
    }
    half = 60
    with EmbeddedBroker(
        topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
    ) as b:
        first = WorkerProc(b.bootstrap, tmp_path / "a", config=config).start()
        try:
            produce(
                b.bootstrap,
                "spanwatch.metrics",
                [(KEY, window(i, v)) for i, v in enumerate(values[:half])],
            )
            got = consume_until(
                b.bootstrap, ["spanwatch.anomalies"], lambda ms: len(scores(ms)) >= half, timeout=90
            )
            assert len(scores(got)) == half
            # processed and committed; stop() flushes the changelog
            first.wait_drained(60, produced={"spanwatch.metrics": half})
        finally:
            first.stop()
        second = WorkerProc(b.bootstrap, tmp_path / "b", app_id=first.app_id, config=config).start(
            wait_ready=90
        )
        try:  # same group, fresh data dir: the detector state comes back from the changelog
            produce(
                b.bootstrap,
                "spanwatch.metrics",
                [(KEY, window(i, v)) for i, v in enumerate(values) if i >= half - 1],
            )
            got = consume_until(
                b.bootstrap,
                ["spanwatch.anomalies"],
                lambda ms: len(scores(ms)) >= len(values),
                timeout=90,
            )
        finally:
            second.stop()
    live = scores(got)
    assert live == expected
    events = [orjson.loads(m.value()) for m in got]
    starts = [
        e
        for e in events
        if e["type"] == "anomaly" and e["state"] == "start" and e["signal"] == "ttft_p95"
    ]
    assert starts and starts[0]["value"] == 3.5
    assert starts[0]["expected"]["high"] < 3.5 and starts[0]["labels"] == SERIES
