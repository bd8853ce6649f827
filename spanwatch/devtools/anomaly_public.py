"""Detectors on public labelled series, window-scored, against a windowed-Gaussian baseline.

Each detector runs online over every series with exactly the worker's code
(:class:`~pipeline.anomaly.base.AnomalyScorer`, no look-ahead); a multi-sensor case alarms
when any sensor does (the highest score). The score is :mod:`spanwatch.devtools.window_score` at two
thresholds: the detector's own (what the worker uses, 0.9 by default) and the best single
threshold over the whole set, as NAB reports it (a detector whose scores carry information
but sit at the wrong height still shows it there).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from spanwatch.devtools import window_score as ws
from spanwatch.devtools.public_series import Case
from spanwatch.pipeline.anomaly.base import AnomalyScorer
from spanwatch.runtime.progress import bar

THRESHOLDS = tuple(
    sorted(
        {
            *(round(0.1 + 0.01 * i, 2) for i in range(90)),
            *(1 - 10 ** (-k / 2) for k in range(4, 15)),
        }
    )
)


class WindowedGaussian:
    """The baseline: mean and standard deviation of the last ``window`` points (refreshed
    every ``step``), score ``1 - Q(|z|)``; it learns every point, anomalies included."""

    def __init__(self, window: int = 6400, step: int = 100) -> None:
        self.buf: deque[float] = deque(maxlen=window)
        self.step, self.count = step, 0
        self.mean, self.std = 0.0, 0.0

    def process(self, x: float | None) -> float:
        if x is None or not math.isfinite(x):
            return 0.0
        score = 0.0
        if self.std > 0:
            z = abs(x - self.mean) / self.std
            score = 1.0 - 0.5 * math.erfc(z / math.sqrt(2))
        self.buf.append(x)
        self.count += 1
        if self.count % self.step == 0 or len(self.buf) < self.step:
            n = len(self.buf)
            self.mean = sum(self.buf) / n
            self.std = math.sqrt(sum((v - self.mean) ** 2 for v in self.buf) / n)
        return score


@dataclass(frozen=True)
class Candidate:
    name: str
    run: Callable[[list[float], list[float | None]], list[float]]  # t, values -> scores
    threshold: float


def scorer_candidate(name: str, spec: dict[str, Any]) -> Candidate:
    def run(t: list[float], xs: list[float | None]) -> list[float]:
        scorer = AnomalyScorer.from_spec(spec)
        return [scorer.process(x, ti).score for ti, x in zip(t, xs, strict=True)]

    return Candidate(name, run, float(spec.get("threshold", 0.9)))


def baseline_candidate() -> Candidate:
    def run(t: list[float], xs: list[float | None]) -> list[float]:
        det = WindowedGaussian()
        return [det.process(x) for x in xs]

    return Candidate("windowed-gaussian (baseline)", run, 0.99)


def case_scores(cand: Candidate, case: Case) -> list[float]:
    per_channel = [cand.run(case.t, xs) for xs in case.channels.values()]
    return [max(col) for col in zip(*per_channel, strict=True)]


@dataclass
class Outcome:
    candidate: str
    fixed: float  # normalized score at the detector's own threshold
    best: float  # at the best single threshold for the set
    best_threshold: float
    tp: int
    fn: int
    fp: int  # at the detector's own threshold
    seconds: float


def evaluate(cand: Candidate, cases: Sequence[Case]) -> Outcome:
    t0 = time.process_time()
    scored = [
        (case_scores(cand, c), ws.windows(len(c.t), ws.events_from_labels(c.labels)))
        for c in bar(cases, desc=f"{cand.name}", unit="series")
    ]
    seconds = time.process_time() - t0

    def at(th: float) -> list[ws.SeriesScore]:
        return [ws.score_series([s >= th for s in scores], wins) for scores, wins in scored]

    fixed = at(cand.threshold)
    best, best_th = max((ws.normalized(at(th)), th) for th in THRESHOLDS)
    return Outcome(
        cand.name,
        ws.normalized(fixed),
        best,
        best_th,
        sum(s.tp for s in fixed),
        sum(s.fn for s in fixed),
        sum(s.fp for s in fixed),
        seconds,
    )


def table(outcomes: Sequence[Outcome], print_: Callable[[str], None] = print) -> None:
    print_(
        "| detector | score at its threshold | best score (threshold) | windows caught "
        "| missed | false-alarm points | CPU s |"
    )
    print_("|---|---|---|---|---|---|---|")
    for o in outcomes:
        print_(
            f"| {o.candidate} | {o.fixed:.1f} | {o.best:.1f} ({o.best_threshold:g}) | "
            f"{o.tp} | {o.fn} | {o.fp} | {o.seconds:.1f} |"
        )


def candidates() -> list[Candidate]:
    """``auto`` (the default for a series of unknown kind), every other detector at its
    defaults (``proportion`` is for error ratios only), and the baseline."""
    from spanwatch.pipeline.anomaly.base import registered
    from spanwatch.pipeline.anomaly.defaults import DEFAULT_DETECTOR

    default = DEFAULT_DETECTOR["detector"]
    out = [scorer_candidate(f"{default} (default)", dict(DEFAULT_DETECTOR))]
    out += [
        scorer_candidate(name, {"detector": name})
        for name in sorted(registered())
        if name not in (default, "proportion")
    ]
    return [*out, baseline_candidate()]


def score_spread(cases: Sequence[Case]) -> tuple[str, list[list[float]]]:
    """How the default detector's scores spread over 0..1 on real series (after warm-up);
    and its scores, for the calibration report."""
    cand = candidates()[0]
    per_case = [case_scores(cand, c) for c in bar(cases, desc="calibration", unit="series")]
    scores = [
        s for c, sc in zip(cases, per_case, strict=True) for s in sc[ws.probation(len(c.t)) :]
    ]
    share = {th: sum(s >= th for s in scores) / max(len(scores), 1) for th in (0.2, 0.5, 0.9)}
    return ", ".join(f">= {th}: {v:.2%}" for th, v in share.items()), per_case


def bench_set(name: str, cases: Sequence[Case], print_: Callable[[str], None] = print) -> None:
    """Window scores of every candidate on one set, then the default's calibration."""
    from spanwatch.devtools.anomaly_calibration import case_calibration, report

    points = sum(len(c.t) for c in cases)
    print_(
        f"\n{name}: {len(cases)} series, {points:,} points; window score 0 = never "
        "fire, 100 = every window at its start (NAB standard profile rules)"
    )
    table([evaluate(c, cases) for c in candidates()], print_)
    spread, per_case = score_spread(cases)
    print_(f"default detector's scores after the probation period: {spread}")
    report(name, case_calibration(cases, per_case), print_)


HELD_OUT = ("nab",)


def bench_public(
    root: str | None, print_: Callable[[str], None] = print, *, generated: bool = True
) -> int:
    """Window scores and calibration per public set, then on the generated kinds of
    :mod:`spanwatch.devtools.anomaly_synthetic`; returns how many public sets were found."""
    from pathlib import Path

    from spanwatch.devtools.public_series import SOURCES, load
    from spanwatch.pipeline.common.errors import SpanwatchError

    found = 0
    for name in SOURCES:
        folder = Path(root) / SOURCES[name][0] if root else None
        try:
            cases = load(name, folder)
        except SpanwatchError as exc:
            print_(f"\n{name}: skipped ({exc})")
            continue
        found += 1
        # NAB is held out: scored to report, never used to choose or tune anything
        bench_set(f"{name} (held out)" if name in HELD_OUT else name, cases, print_)
    if generated:
        from spanwatch.devtools.anomaly_synthetic import cases as generated_cases

        bench_set("generated kinds the public sets lack", generated_cases(), print_)
    return found
