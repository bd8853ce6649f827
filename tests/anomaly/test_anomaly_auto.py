"""The ``auto`` detector, its tail calibration, and the window score used to judge detectors
on public data (spanwatch bench anomaly)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from spanwatch.devtools import anomaly_public as ap
from spanwatch.devtools import public_series as ps
from spanwatch.devtools import window_score as ws
from spanwatch.pipeline.anomaly.auto import AutoDetector
from spanwatch.pipeline.anomaly.base import AnomalyScorer
from spanwatch.pipeline.anomaly.tail import (
    TailCalibrator,
    probability_to_score,
    score_to_probability,
)
from spanwatch.pipeline.common.errors import SpanwatchError

DAY, STEP = 86_400.0, 300.0  # five-minute points
T0 = 1_700_006_400.0  # a midnight (UTC)


def run(xs: list[float], spec: dict | None = None) -> list[bool]:
    scorer = AnomalyScorer.from_spec(spec or {"detector": "auto"})
    return [scorer.process(x, T0 + i * STEP).anomalous for i, x in enumerate(xs)]


def daily(rng: random.Random, days: int, noise: float = 2.0) -> list[float]:
    """A square daily cycle: 80 by day, 20 by night (a scheduled job, a rush hour)."""
    per_day = int(DAY / STEP)
    return [
        (80.0 if (i % per_day) < per_day // 2 else 20.0) + rng.gauss(0, noise)
        for i in range(days * per_day)
    ]


# --- tail calibration -------------------------------------------------------------------


def test_probability_to_score_reads_as_decades() -> None:
    assert probability_to_score(1.0) == 0.0 and probability_to_score(0.0) == 1.0
    assert probability_to_score(1e-3) == pytest.approx(0.6)
    assert score_to_probability(0.9) == pytest.approx(10**-4.5)


def test_tail_is_empirical_in_the_bulk_and_exponential_beyond() -> None:
    rng = random.Random(1)
    cal = TailCalibrator(history=2000)
    for _ in range(2000):
        cal.learn(abs(rng.gauss(0, 1)))
    assert cal.probability(0.0) == pytest.approx(1.0)
    assert 0.2 < cal.probability(1.0) < 0.45  # P(|Z| >= 1) = 0.32
    ps_ = [cal.probability(d) for d in (2.0, 3.0, 4.0, 6.0, 10.0)]
    assert ps_ == sorted(ps_, reverse=True) and ps_[-1] < 1e-5
    assert cal.deviation_at(cal.probability(6.0)) == pytest.approx(6.0, rel=1e-6)


def test_routine_spikes_become_routine() -> None:
    """Spikes in 2 % of the points: a spike of their usual size stops being rare."""
    rng = random.Random(2)
    quiet, spiky = TailCalibrator(), TailCalibrator()
    for i in range(1000):
        d = abs(rng.gauss(0, 1))
        quiet.learn(d)
        spiky.learn(20.0 if i % 50 == 0 else d)
    assert probability_to_score(quiet.probability(20.0)) == 1.0
    assert probability_to_score(spiky.probability(20.0)) < 0.5


# --- the auto detector ------------------------------------------------------------------


def test_daily_cycle_is_expected_and_its_breaks_are_not() -> None:
    """The robust detector's failure on real data: every evening rush hour was an alarm."""
    rng = random.Random(3)
    xs = daily(rng, 8)
    quiet = run(xs)
    per_day = int(DAY / STEP)
    assert not any(quiet[2 * per_day :])  # once the profile is learned, the cycle is normal
    anomaly = 6 * per_day + 10
    for i in range(anomaly, anomaly + 60):  # the day's peak 50 % higher for five hours
        xs[i] += 40.0
    flags = run(xs)
    assert any(flags[anomaly : anomaly + 3])
    assert not any(flags[2 * per_day : anomaly]) and not any(flags[anomaly + 120 :])
    det = AnomalyScorer.from_spec({"detector": "auto"})
    for i, x in enumerate(xs[: 3 * per_day]):
        det.process(x, T0 + i * STEP)
    assert "daily" in det.detector.model  # type: ignore[attr-defined]


def test_level_shift_and_spike_on_noise() -> None:
    rng = random.Random(4)
    xs = [100 + rng.gauss(0, 5) for _ in range(1500)]
    for i in range(1000, 1500):
        xs[i] += 30.0  # a 6-sigma level shift that stays
    xs[600] += 60.0
    flags = run(xs)
    assert flags[600] and not any(flags[200:600]) and not any(flags[601:1000])
    assert any(flags[1000:1005])
    assert not any(flags[1100:])  # a lasting change becomes the baseline (adapt_after)


def test_a_rare_big_change_alerts_every_time_a_routine_one_does_not() -> None:
    """A crash rate that jumps x20 once in a while is an incident every time; one that
    jumps x20 every few hours (2.5 % of the points) has made that routine, until a jump
    twice the size of any routine one comes."""
    rng = random.Random(5)
    base = [max(0.0, 10 + rng.gauss(0, 3)) for _ in range(3000)]
    rare = list(base)
    rare_spikes = list(range(300, 3000, 700))  # once every ~2.5 days at 5 minutes
    for i in rare_spikes:
        rare[i] = 200.0
    assert all(run(rare, {"detector": "auto", "side": "up"})[i] for i in rare_spikes)
    routine = list(base)
    spikes = list(range(300, 3000, 40))
    for i in spikes:
        routine[i] = 200.0
    routine[2990] = 900.0  # beyond anything routine here
    flags = run(routine, {"detector": "auto", "side": "up"})
    assert sum(flags[i] for i in spikes[20:]) <= 2 and flags[2990]


def test_a_level_shift_is_one_event_with_one_high_score() -> None:
    """Consecutive anomalous points are one event: the shift scores high at its start, the
    points that continue it are judged against the event (no new information), and the
    series stays anomalous until the new level is learned."""
    rng = random.Random(9)
    xs = [100 + rng.gauss(0, 5) for _ in range(1200)] + [160 + rng.gauss(0, 5) for _ in range(200)]
    scorer = AnomalyScorer.from_spec({"detector": "auto"})
    points = [scorer.process(x, T0 + i * STEP) for i, x in enumerate(xs)]
    shift = points[1200:1260]
    assert sum(p.score >= 0.9 for p in shift) <= 2 and shift[0].score >= 0.9
    assert all(p.anomalous for p in shift[:20])  # one event, from its start
    assert sum(p.raw >= 0.9 for p in shift) >= 20  # every one of them is far from normal
    assert not any(p.anomalous for p in points[1300:])  # the new level became normal


def test_a_series_that_leaves_a_flat_stretch_is_one_event() -> None:
    rng = random.Random(10)
    xs = [50 + rng.gauss(0, 2) for _ in range(800)] + [50.0] * 300
    xs += [50 + rng.gauss(0, 2) for _ in range(400)]
    scorer = AnomalyScorer.from_spec({"detector": "auto"})
    scores = [scorer.process(x, T0 + i * STEP).score for i, x in enumerate(xs)]
    assert sum(s >= 0.9 for s in scores[1100:]) <= 3


def test_scores_spread_and_flat_series_stay_quiet() -> None:
    rng = random.Random(6)
    scorer = AnomalyScorer.from_spec({"detector": "auto"})
    got = [scorer.process(50 + rng.gauss(0, 1), T0 + i * STEP).score for i in range(3000)]
    tail = got[500:]
    assert 0.02 < sum(s >= 0.2 for s in tail) / len(tail) < 0.4  # scores use the range
    assert sum(s >= 0.9 for s in tail) <= 2  # 0.9 is rare on pure noise
    flat = run([7.0] * 500)
    assert not any(flat)


def test_sampling_interval_drops_impossible_periods() -> None:
    det = AutoDetector()
    for i in range(40):
        det.learn_one(1.0 + (i % 2), T0 + i * DAY)  # one point per day
    assert [p.name for p in det.predictors] == ["fast", "slow", "fast+weekly", "slow+weekly"]
    rng = random.Random(7)
    scorer = AnomalyScorer.from_spec({"detector": "auto"})
    for _ in range(300):  # no timestamps at all: the levels still judge
        assert not scorer.process(10 + rng.gauss(0, 1), None).anomalous
    assert scorer.process(60.0, None).anomalous
    assert all(p.profile is None or not p.profile.ready for p in scorer.detector.predictors)


# --- window score and the public-set harness --------------------------------------------


def test_window_score_rules() -> None:
    n = 1000
    events = ws.events_from_labels([1 if i in (500, 501, 503) else 0 for i in range(n)])
    assert events == [(500, 503)]
    wins = ws.windows(n, events)
    assert wins == [(450, 549)]  # 10 % of the series, from half a window before the event
    none = ws.score_series([False] * n, wins)
    assert none.raw == none.null == -1.0
    early = [i == 450 for i in range(n)]
    late = [i == 540 for i in range(n)]
    e, la = ws.score_series(early, wins), ws.score_series(late, wins)
    assert e.raw == pytest.approx(e.perfect) and 0 < la.raw < e.raw
    assert ws.normalized([none]) == 0.0 and ws.normalized([e]) == pytest.approx(100.0)
    random_fp = ws.score_series([i in (200, 450) for i in range(n)], wins)
    after_fp = ws.score_series([i in (560, 450) for i in range(n)], wins)
    assert random_fp.raw == pytest.approx(e.raw - ws.A_FP)  # before any window: full cost
    assert e.raw - ws.A_FP < after_fp.raw < e.raw  # right after the incident: less
    assert ws.score_series([i == 100 for i in range(n)], wins).fp == 0  # probation


def test_windowed_gaussian_baseline() -> None:
    base = ap.WindowedGaussian(window=100, step=10)
    got = [base.process(float(i % 5)) for i in range(200)]
    assert max(got[50:]) < 0.99 and base.process(100.0) > 0.999999


def write_cloud_monitoring(root: Path) -> None:
    folder = root / "data" / "api"
    folder.mkdir(parents=True)
    rows = ["TimeStamp,Value,Label"] + [
        f'"2018-07-03T{h:02d}:{m:02d}:00Z",{500.0 if (h, m) == (20, 0) else 10 + m % 3},'
        f"{int((h, m) == (20, 0))}"
        for h in range(24)
        for m in range(60)
    ]
    (folder / "api-01.csv").write_text("\n".join(rows) + "\n")


def write_skab(root: Path) -> None:
    folder = root / "data" / "valve1"
    folder.mkdir(parents=True)
    rows = ["datetime;a;b;anomaly;changepoint"]
    for i in range(1200):
        fault = 800 <= i < 1000
        rows.append(
            f"2020-03-09 10:{i // 60 % 60:02d}:{i % 60:02d};{1 + (i % 2) * 0.01};"
            f"{5 + (20 if fault else 0) + (i % 3) * 0.1};{int(fault)}.0;0.0"
        )
    (folder / "0.csv").write_text("\n".join(rows) + "\n")


def test_public_loaders_and_evaluation(tmp_path: Path) -> None:
    write_cloud_monitoring(tmp_path / "cloud-monitoring-dataset")
    write_skab(tmp_path / "SKAB")
    cm = ps.load("cloud-monitoring", tmp_path / "cloud-monitoring-dataset")
    sk = ps.load("skab", tmp_path / "SKAB")
    assert [c.name for c in cm] == ["api/api-01"] and len(cm[0].t) == 1440
    assert list(sk[0].channels) == ["a", "b"] and sum(sk[0].labels) == 200
    auto = ap.candidates()[0]
    for cases in (cm, sk):
        out = ap.evaluate(auto, cases)
        assert out.tp == 1 and out.fn == 0 and out.fixed > 50
    with pytest.raises(SpanwatchError, match=r"git clone https://github\.com/waico/SKAB"):
        ps.load("skab", tmp_path / "nowhere")
    lines: list[str] = []
    assert ap.bench_public(str(tmp_path), lines.append, generated=False) == 2
    assert any("windowed-gaussian (baseline)" in line for line in lines)
    assert any(line.startswith("skab: points >= 0.9 outside labelled windows") for line in lines)


def test_calibration_counts_points_and_events_outside_windows() -> None:
    from spanwatch.devtools.anomaly_calibration import calibration

    labels = [0] * 1000
    labels[700] = 1
    scores = [0.0] * 1000
    scores[300:303] = [0.95, 0.97, 0.92]  # one event of three points, outside
    scores[500] = 0.99  # another, one point
    scores[700] = 1.0  # inside the labelled window
    scores[10] = 1.0  # in the probation period: not counted
    c = calibration("s", scores, labels)
    assert (c.high_outside, c.events_outside) == (4, 2)
    assert c.points == 1000 - ws.probation(1000) and c.outside < c.points


def test_generated_kinds_are_labelled_and_reproducible() -> None:
    from spanwatch.devtools.anomaly_synthetic import KINDS, cases

    a, b = cases(seed=1, per_kind=1), cases(seed=1, per_kind=1)
    assert [c.channels for c in a] == [c.channels for c in b]
    assert len(a) == len(KINDS) and all(sum(c.labels) > 0 for c in a)
