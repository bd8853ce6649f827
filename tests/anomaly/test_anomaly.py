"""Anomaly detectors: contract checks over every detector (river ``checks`` style), the
scoring policy, the streaming stage, and the backtest command."""

from __future__ import annotations

import io
import math
import pickle
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spanwatch.commands.anomaly import backtest
from spanwatch.pipeline.anomaly.base import AnomalyScorer, build_detector, registered, z_to_score
from spanwatch.pipeline.anomaly.defaults import DEFAULT_DETECTORS, SIGNALS
from spanwatch.pipeline.anomaly.settings import AnomalySettings
from spanwatch.pipeline.anomaly.stream import AnomalyStage, dump_state, load_state
from spanwatch.pipeline.common.errors import ConfigError
from spanwatch.pipeline.config import load_settings

NAMES = sorted(registered())


def series(seed: int, n: int = 300, base: float = 1.0, noise: float = 0.1) -> list[float]:
    rng = random.Random(seed)
    xs = [max(base * (1 + noise * rng.gauss(0, 1)), 0.0) for _ in range(n)]
    if base < 1:  # proportions stay proportions
        xs = [min(x, 1.0) for x in xs]
    return xs


def base_for(name: str) -> float:
    return 0.05 if name == "proportion" else 1.0


def scores(name: str, xs: list[float | None]) -> list[float]:
    det = build_detector({"detector": name})
    out = []
    for i, x in enumerate(xs):
        out.append(det.score_one(x, i * 60.0))
        det.learn_one(x, i * 60.0)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_score_range_and_determinism(name: str) -> None:
    xs: list[float | None] = list(series(1, base=base_for(name)))
    a, b = scores(name, xs), scores(name, xs)
    assert a == b
    assert all(0.0 <= s <= 1.0 for s in a)


@pytest.mark.parametrize("name", NAMES)
def test_grace_period_scores_zero(name: str) -> None:
    det = build_detector({"detector": name})
    for i in range(det.grace_period):
        assert det.score_one(1000.0 * (i % 2), i) == 0.0
        det.learn_one(0.5, i)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_keeps_scoring_identically(name: str) -> None:
    xs = series(2, base=base_for(name))
    det = build_detector({"detector": name})
    for i, x in enumerate(xs[:200]):
        det.learn_one(x, i * 60.0)
    clone = pickle.loads(pickle.dumps(det))
    for i, x in enumerate(xs[200:], 200):
        assert clone.score_one(x, i * 60.0) == det.score_one(x, i * 60.0)
        det.learn_one(x, i * 60.0)
        clone.learn_one(x, i * 60.0)
    assert clone.expected(1.0) == det.expected(1.0)


@pytest.mark.parametrize("name", NAMES)
def test_constant_input(name: str) -> None:
    c = base_for(name)
    det = build_detector({"detector": name})
    for i in range(100):
        det.learn_one(c, i * 60.0)
    assert det.score_one(c, 6000.0) < 0.5  # the constant itself is normal
    assert det.score_one(c * 10, 6000.0) > 0.9  # a jump is not
    lo, hi = det.expected(6000.0) or (math.nan, math.nan)
    assert lo <= c <= hi


@pytest.mark.parametrize("name", NAMES)
def test_missing_input_is_neither_scored_nor_learned(name: str) -> None:
    det = build_detector({"detector": name})
    for i, x in enumerate(series(3, base=base_for(name))[:100]):
        det.learn_one(x, i * 60.0)
    before = pickle.dumps(det)
    for bad in (None, math.nan, math.inf, -math.inf):
        assert det.score_one(bad, 1.0) == 0.0
        det.learn_one(bad, 1.0)
    assert pickle.dumps(det) == before


@pytest.mark.parametrize("name", NAMES)
def test_very_large_values(name: str) -> None:
    det = build_detector({"detector": name})
    for i, x in enumerate(series(4, base=base_for(name))[:100]):
        det.learn_one(x, i * 60.0)
    for big in (1e12, 1e300, -1e300):
        s = det.score_one(big, 6000.0)
        assert 0.0 <= s <= 1.0 and not math.isnan(s)
    scorer = AnomalyScorer(det, adapt_after=2)
    for i in range(5):  # even learned (adapted), nothing overflows
        p = scorer.process(1e300, 6060.0 + i * 60)
        assert 0.0 <= p.score <= 1.0
        if p.expected is not None:
            assert not any(math.isnan(v) for v in p.expected)


def test_z_to_score_shape() -> None:
    assert z_to_score(4.0, 4.0) == pytest.approx(0.9)
    assert z_to_score(0.0, 4.0) == 0.0 and z_to_score(math.inf, 4.0) == 1.0
    assert z_to_score(2.0, 4.0) < 0.5 < z_to_score(3.5, 4.0) < z_to_score(8.0, 4.0) < 1.0


def test_registry_errors() -> None:
    with pytest.raises(ConfigError, match="unknown detector 'nope'"):
        build_detector({"detector": "nope"})
    with pytest.raises(
        ConfigError, match=r"detector robust: unknown parameter\(s\) colour; it takes window"
    ):
        build_detector({"detector": "robust", "colour": 1})
    with pytest.raises(ConfigError, match="side up"):
        build_detector({"detector": "robust", "side": "sideways"})


def test_anomalies_do_not_poison_the_baseline_until_they_persist() -> None:
    scorer = AnomalyScorer(build_detector({"detector": "robust", "log": True}), adapt_after=10)
    xs = series(5, 200)
    for i, x in enumerate(xs):
        scorer.process(x, i * 60.0)
    expected = scorer.detector.expected()
    flags = [scorer.process(5.0, (200 + i) * 60.0).anomalous for i in range(9)]
    assert all(flags) and scorer.detector.expected() == expected  # nothing learned
    flags = [scorer.process(5.0, (209 + i) * 60.0).anomalous for i in range(200)]
    assert not flags[-1]  # a lasting change became the new normal


def metrics_record(i: int, value: float | None, window: str = "1m") -> dict[str, Any]:
    start = 1_700_000_000_000_000_000 + i * 60 * 10**9
    return {
        "series": {"service": "chat", "layer": "app", "operation": "chat", "model": "m"},
        "window": {
            "name": window,
            "start_ns": start,
            "end_ns": start + 60 * 10**9,
            "size_s": 60.0,
            "step_s": 60.0,
        },
        "count": 100,
        "rate_per_s": 1.5,
        "error_rate": 0.0,
        "ttft_s": None if value is None else {"p95": value},
    }


def run_stage(stage: AnomalyStage, recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    store: dict[str, str] = {}
    out = []
    for r in recs:
        out += stage.process(
            "k",
            r,
            lambda k: load_state(store[k]) if k in store else None,
            lambda k, s: store.__setitem__(k, dump_state(s)) or True,
        )
    return out


def test_stage_scores_start_end_duplicates_and_windows() -> None:
    stage = AnomalySettings(signals={"ttft_p95": DEFAULT_DETECTORS["ttft_p95"]}).stage()
    xs = series(6, 100, base=0.8)
    recs = [metrics_record(i, x) for i, x in enumerate(xs)]
    recs += [metrics_record(100 + i, 4.0) for i in range(3)] + [metrics_record(103, 0.8)]
    recs.insert(50, recs[40])  # redelivered: skipped
    recs.insert(10, metrics_record(10, 0.8, window="10s"))  # not the scored window
    out = run_stage(stage, recs)
    scored = [r for r in out if r["type"] == "score"]
    assert len(scored) == 104 and stage.stats.duplicates == 1
    events = [(r["state"], r["window"]["start_ns"]) for r in out if r["type"] == "anomaly"]
    assert [e[0] for e in events] == ["start", "end"]
    spike = next(r for r in scored if r["value"] == 4.0)
    assert spike["anomalous"] and spike["expected"]["high"] < 4.0 < 10
    assert spike["labels"]["model"] == "m" and spike["unit"] == "s"
    # while a detector learns, its records say so, and when its first score is due
    first = scored[0]["learning"]
    grace = first["needed"]
    assert first["seen"] == 1 and grace > 1  # the record follows the point's learning
    step = scored[0]["window"]["end_ns"] - scored[0]["window"]["start_ns"]
    assert first["ready_at_ns"] == scored[0]["window"]["end_ns"] + (grace - 1) * step
    assert "learning" not in scored[grace + 5]


def test_stage_overflow_and_missing() -> None:
    stage = AnomalySettings(signals={"ttft_p95": DEFAULT_DETECTORS["ttft_p95"]}).stage()
    out = stage.process("k", metrics_record(0, 0.5), lambda k: None, lambda k, s: False)
    assert out == [] and stage.stats.series_overflow == 1
    store: dict[str, Any] = {}
    out = stage.process(
        "k", metrics_record(0, None), store.get, lambda k, s: store.__setitem__(k, s) or True
    )
    assert out == [] and stage.stats.skipped_missing == 1
    assert store == {}  # a series that never had the value keeps no state for it
    put = lambda k, s: store.__setitem__(k, s) or True  # noqa: E731
    stage.process("k", metrics_record(1, 0.5), store.get, put)
    stage.process("k", metrics_record(2, None), store.get, put)  # a gap in a known series
    assert list(store) == ["ttft_p95|k"] and store["ttft_p95|k"].last_t is not None
    assert stage.stats.skipped_missing == 2


def test_every_signal_extracts_from_real_shapes() -> None:
    rec = metrics_record(0, 0.9)
    rec.update(tpot_s={"p95": 0.02}, latency_s={"p95": 2.0}, queue_s=None)
    tok = {
        "type": "window",
        "entity": {"kind": "model", "id": "m"},
        "window": rec["window"],
        "total_tokens": 6000,
        "cost": {"USD": 0.3},
    }
    assert SIGNALS["tokens_per_min"].extract(tok) == 6000
    assert SIGNALS["cost_per_min"].extract(tok) == pytest.approx(0.3)
    assert SIGNALS["queue_p95"].extract(rec) is None
    assert SIGNALS["cache_hit_ratio"].extract(rec) is None  # no call reported its cache
    stage = load_settings().anomaly.stage()
    assert {s.name for s, _, _ in stage.points(rec)} == {
        "cache_hit_ratio",
        "ttft_p95",
        "tpot_p95",
        "latency_p95",
        "queue_p95",
        "error_rate",
        "request_rate",
        "requests_waiting_max",
        "kv_cache_usage_max",
    }
    # an engine window (spanwatch.engine) is read the same way; span values are absent there
    engine = {"series": {"layer": "engine"}, "window": rec["window"], "requests_waiting_max": 7.0}
    values = {s.name: v for s, v, _ in stage.points(engine)}
    assert values["requests_waiting_max"] == 7.0 and values["ttft_p95"] is None
    cached = {**rec, "cache_hit_ratio": 0.42}
    assert ("cache_hit_ratio", 0.42) in {(s.name, v) for s, v, _ in stage.points(cached)}
    assert (
        dict((s.name, v) for s, v, _ in stage.points({**cached, "count": 4}))["cache_hit_ratio"]
        is None
    )
    assert {s.name for s, _, _ in stage.points(tok)} == {"tokens_per_min", "cost_per_min"}
    tok["entity"]["kind"] = "user"
    assert stage.points(tok) == []  # users are not scored by default (cardinality)


def test_backtest_equals_the_stage(tmp_path: Path) -> None:
    xs: list[float | None] = [*series(7, 150, base=0.8), 3.0, 3.2, None, 0.8]
    t0 = 1_700_000_000
    csv_in = "timestamp,value\n" + "".join(
        f"{t0 + (i + 1) * 60},{'' if x is None else repr(x)}\n" for i, x in enumerate(xs)
    )
    out = io.StringIO()
    backtest(io.StringIO(csv_in), out, dict(DEFAULT_DETECTORS["ttft_p95"]))
    rows = out.getvalue().splitlines()
    assert rows[0] == "timestamp,value,anomaly_score" and len(rows) == len(xs) + 1
    cli = {int(r.split(",")[0]): float(r.split(",")[2]) for r in rows[1:]}
    stage = AnomalySettings(signals={"ttft_p95": DEFAULT_DETECTORS["ttft_p95"]}).stage()
    recs = []
    for i, x in enumerate(xs):
        r = metrics_record(0, x)
        r["window"]["end_ns"] = (t0 + (i + 1) * 60) * 10**9
        recs.append(r)
    live = {
        r["window"]["end_ns"] // 10**9: r["score"]
        for r in run_stage(stage, recs)
        if r["type"] == "score"
    }
    assert live == {t: s for t, s in cli.items() if t in live}
    assert len(live) == len(xs) - 1  # the missing point is not scored
    assert max(live.values()) > 0.9


def run_cli(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spanwatch.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_score_command(tmp_path: Path) -> None:
    src = tmp_path / "s.csv"
    src.write_text(
        "timestamp,value\n"
        + "".join(f"2026-11-28T10:{i:02d}:00Z,{1 + (i % 3) * 0.01}\n" for i in range(40))
    )
    res = run_cli(
        [
            "anomaly",
            "score",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.csv"),
            "--detector",
            "ewma",
            "--param",
            "period_s=0",
            "--param",
            "log=true",
            "--extra",
        ]
    )
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert lines[0] == ("timestamp,value,anomaly_score,expected_low,expected_high,anomalous,model")
    assert len(lines) == 41 and lines[1].startswith("2026-11-28T10:00:00Z,1.0,0.000000")
    bad = run_cli(["anomaly", "score"], "time,value\n1,2\n")
    assert bad.returncode == 2 and "header 'timestamp,value'" in bad.stderr
    bad = run_cli(["anomaly", "score"], "timestamp,value\nyesterday,1\n")
    assert "line 2: timestamp 'yesterday'" in bad.stderr
    bad = run_cli(["anomaly", "score", "--detector", "robust", "--param", "window=1"], "")
    assert bad.returncode == 2 and "window >= 3" in bad.stderr
    bad = run_cli(["anomaly", "score", "--param", "x=="], "timestamp,value\n1,2\n")
    assert bad.returncode == 2 and "--param 'x==': the value is not YAML" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_repeated_and_backward_timestamps_are_scored_and_counted() -> None:
    """A daylight-saving change steps local time back an hour; exports repeat rows."""
    stamps = [f"2026-10-25 0{h}:{m:02d}:00" for h in (0, 1, 2) for m in range(0, 60, 5)]
    stamps += [f"2026-10-25 02:{m:02d}:00" for m in range(0, 60, 5)]  # the hour again
    stamps.insert(5, stamps[4])  # one repeated row
    text = "timestamp,value\n" + "".join(f"{t},{10 + i % 3}\n" for i, t in enumerate(stamps))
    out = io.StringIO()
    summary = backtest(io.StringIO(text), out, {"detector": "auto"})
    assert summary.rows == len(stamps) == len(out.getvalue().splitlines()) - 1
    assert (summary.repeated, summary.backwards) == (1, 1)
    res = run_cli(["anomaly", "score"], text)
    assert res.returncode == 0, res.stderr
    assert "1 repeated and 1 out-of-order timestamps (kept, scored in file order)" in res.stderr
    assert len(res.stdout.splitlines()) == len(stamps) + 1


def test_cli_default_detector_is_auto() -> None:
    res = run_cli(["anomaly", "score"], "timestamp,value\n1,1\n")
    assert res.returncode == 0 and "'detector': 'auto'" in res.stderr


def test_config_validates_signals() -> None:
    with pytest.raises(ConfigError, match="unknown signals"):
        load_settings(None, anomaly__signals={"ttft_p99": {"detector": "robust"}})
    with pytest.raises(ConfigError, match="ttft_p95: unknown detector"):
        load_settings(None, anomaly__signals={"ttft_p95": {"detector": "magic"}})


def test_catalog_values_read_their_own_field() -> None:
    """A value marked as a plain record field (rule tests set it by that name) reads it."""
    from spanwatch.pipeline.windows.values import METRICS, TOKENS

    plain = [v for v in (*METRICS.values(), *TOKENS.values()) if v.field]
    assert {v.name for v in plain} >= {"requests", "error_rate", "no_response", "total_tokens"}
    for v in plain:
        assert v.extract({v.field: 3}) == 3.0, v.name
        assert callable(v.extract) and isinstance(v.unit, str)


def test_an_unknown_detector_parameter_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) bogus; it takes alpha, "):
        build_detector({"detector": "ewma", "bogus": 1})
