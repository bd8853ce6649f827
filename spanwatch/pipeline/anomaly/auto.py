"""``auto``: the predictor that fits the series best, scores calibrated on its own tail.

Predictors run side by side (:mod:`pipeline.anomaly.predictors`): a fast and a slow level,
each alone and on top of a daily and a weekly seasonal profile (ready once a period and a
half was seen). Each keeps its errors (:class:`ErrorTracker`); the series is judged by the
one that predicts it best over a long memory, switching only for a clear gain
(``switch_margin``). A wandering series is then judged by a fast level, a noisy stationary
one by a slow level, a series with a rush hour or a 07:00 batch job by its daily profile.

The residual, in units of the chosen predictor's robust error scale, is judged twice, each
by its own :class:`~pipeline.anomaly.tail.TailCalibrator`: the point itself (spikes, steps)
and the mean of the last ``window`` points (a level shift too small for any single point).
Both learn from every point, anomalies included, so that spikes which are routine on a
series become routine. One thing never becomes routine: a *big change*, a value at least
``1 + big_change`` times the expected one that is also far outside the noise; it is scored
on a fixed exponential tail (``big_beta`` noise scales per e-fold) however often it
happens. A crash rate that jumps x20 every day keeps alerting; a query rate
that dips 30 % a few times an hour stops.

The score is the rarer of the looks (doubled: two of them) as
:func:`~pipeline.anomaly.tail.probability_to_score` rarity, so that ``threshold: 0.9`` means
the same on every series: about one normal point in 30,000 reaches it.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import median

from .base import Detector, directed, register
from .predictors import Level, Profile
from .tail import TailCalibrator, probability_to_score, score_to_probability

SIGMA_PER_MAD = 1.4826  # median absolute deviation -> standard deviation, for a normal
WARM = 20  # errors a predictor has seen before its residuals are judged
CHOOSE_AFTER = 50  # ... before it can be chosen
BIG_FROM = 2.0  # noise scales under which no change is big, whatever the ratio
BIG_RARE = 0.002  # big changes starting more often than this per point are routine
BIG_MEMORY = 2000  # points over which that frequency is measured
BIG_FORGET = 0.999  # per point: the largest routine change is forgotten over ~1000 points
BIG_BEYOND = math.log(2.0)  # where big changes are routine, one twice the largest still is


def track_median(m: float | None, x: float, rate: float) -> float:
    """One step of a multiplicative stochastic approximation of the median of ``x >= 0``."""
    if m is None:
        return x
    if m <= 0:
        return x * rate
    return m * (1.0 + rate) if x > m else m * (1.0 - rate) if x < m else m


class ErrorTracker:
    """A predictor's absolute errors: a fast robust scale (median); a clipped mean (the
    scale's floor where the median is 0, e.g. counts that are mostly zero); and a slow
    clipped mean for the choice between predictors (a model that misses every step of a
    square wave has a median error of 0, but not a mean one)."""

    def __init__(self, alpha: float, choice_alpha: float) -> None:
        self.alpha, self.choice_alpha = alpha, choice_alpha
        self.median: float | None = None
        self.fit = 0.0
        self.mean = 0.0
        self.points = 0

    def learn(self, err: float, scale: float) -> None:
        self.points += 1
        self.median = track_median(self.median, err, max(self.alpha, 1.0 / self.points))
        clipped = min(err, 5.0 * scale)
        self.fit += max(self.choice_alpha, 1.0 / self.points) * (clipped - self.fit)
        self.mean += max(self.alpha, 1.0 / self.points) * (clipped - self.mean)

    def sigma(self) -> float:
        return max(SIGMA_PER_MAD * (self.median or 0.0), 0.6 * self.mean)


class Judge:
    """How rare a predictor's standardized residuals are, two ways: the point (spikes,
    steps) and the mean of the last ``window`` points (a sustained deviation too small for
    any single point), each against its own tail. Both learn from every point,
    anomalies included, so that what is routine on a series becomes routine."""

    def __init__(self, window: int, history: int) -> None:
        self.point = TailCalibrator(history=history)
        self.sustained = TailCalibrator(history=history, min_scale=0.25)
        self.recent: deque[float] = deque(maxlen=max(window - 1, 0))

    def _sustained(self, z: float, side: str) -> float:
        """The window's mean deviation, but no more than the point's own: a point back to
        normal is not part of a sustained deviation, whatever came before it."""
        mean = (sum(self.recent) + z) / (len(self.recent) + 1)
        return min(directed(mean, side), directed(z, side))

    def observe(self, z: float, side: str) -> None:
        self.point.learn(directed(z, side))
        self.sustained.learn(self._sustained(z, side))
        self.recent.append(z)

    def probability(self, z: float, side: str) -> float:
        """The rarer look, doubled (two looks)."""
        return 2.0 * min(
            self.point.probability(directed(z, side)),
            self.sustained.probability(self._sustained(z, side)),
        )


@register("auto")
class AutoDetector(Detector):
    def __init__(
        self,
        *,
        side: str = "both",
        log: bool = False,
        periods: tuple[float, ...] | list[float] = (86_400.0, 604_800.0),
        window: int = 3,
        history: int = 1000,
        error_alpha: float = 0.01,
        choice_alpha: float = 0.01,
        switch_margin: float = 0.1,
        big_change: float = 2.0,
        big_beta: float = 0.5,
        min_rel_spread: float = 0.01,
        min_abs_spread: float = 1e-9,
        max_slots: int = 288,
        grace_period: int = 50,
    ) -> None:
        if side not in ("up", "down", "both") or window < 1 or not 0 < error_alpha <= 1:
            raise ValueError("side up|down|both, window >= 1, error_alpha in (0, 1]")
        if any(p <= 0 for p in periods) or not 0 <= switch_margin < 1 or big_beta <= 0:
            raise ValueError("periods > 0, switch_margin in [0, 1), big_beta > 0")
        self.side, self.log = side, log
        self.switch_margin, self.big_change, self.big_beta = switch_margin, big_change, big_beta
        self.min_rel_spread, self.min_abs_spread = min_rel_spread, min_abs_spread
        self.grace_period = grace_period
        names = {86_400.0: "daily", 604_800.0: "weekly"}
        self.profiles = [
            Profile(float(p), names.get(float(p), f"{p:g}s"), max_slots=max_slots) for p in periods
        ]
        self.predictors = [Level(a, prof) for prof in (None, *self.profiles) for a in (0.5, 0.05)]
        self.errors = [ErrorTracker(error_alpha, choice_alpha) for _ in self.predictors]
        self.judges = [Judge(window, history) for _ in self.predictors]
        self.chosen = 1  # the slow level until another is known to be better
        self._gaps: list[float] = []
        self._last_t: float | None = None
        self._observed = False  # observe_one saw the point that learn_one is given
        self.big_rate = 0.0  # big changes started per point, recently (decayed)
        self.in_big = False
        self.big_seen = 0.0  # log ratio of the largest recent big change (decayed)

    @property
    def model(self) -> str:
        """The predictor currently judging the series."""
        return self.predictors[self.chosen].name

    def _scale(self, k: int, pred: float) -> float:
        return self._floor(self.errors[k].sigma(), pred)

    def _judged(self, k: int, y: float, t: float | None) -> tuple[float, float] | None:
        """(prediction, z) of ``y`` against predictor ``k``, once it is warm."""
        if self.errors[k].points < WARM:
            return None
        pred = self.predictors[k].predict(t)
        if pred is None:
            return None
        return pred, (y - pred) / self._scale(k, pred)

    def _observe(self, x: float, t: float | None) -> None:
        """Every point, anomalies included, feeds the tails and the window means: routine
        spikes become routine; a sustained shift is seen in full."""
        y = self._tx(x)
        for k, judge in enumerate(self.judges):
            judged = self._judged(k, y, t)
            if judged is not None:
                judge.observe(judged[1], self.side)
                if k == self.chosen:
                    self._count_big(x, *judged)
        self._observed = True

    def _observe_ongoing(self, x: float, t: float | None) -> None:
        """A point that continues an anomaly: no new extreme for the tails, but its time
        slot is still a slot of the day (a profile that skipped the hours after every
        day/night switch would never be complete)."""
        y = self._tx(x)
        self._learn_interval(t)
        clip = 4.0 * self._scale(self.chosen, y) if self.errors[self.chosen].points else math.inf
        for prof in self.profiles:
            prof.learn(y, t, clip)

    def _count_big(self, x: float, pred: float, z: float) -> None:
        """How often a big change starts here (runs of big points count once): where that
        is routine (bursty counts that triple a few times a day), a big change is judged by
        the tails like any other point. The rate starts at 0 and moves by 1/BIG_MEMORY per
        point, so a few incidents never make the next one routine."""
        big = directed(z, self.side) > BIG_FROM and self._big(x, pred)
        starts = big and not self.in_big
        self.in_big = big
        self.big_rate += (float(starts) - self.big_rate) / BIG_MEMORY
        self.big_seen *= BIG_FORGET
        if big:
            self.big_seen = max(self.big_seen, self._ratio(x, pred))

    def rebase(self, values: list[float], t: float | None) -> None:
        """Every level moves to the change's median at once (seasonal offsets kept); the
        window looks forget the deviations that led there."""
        if not values:
            return
        y = self._tx(sorted(values)[len(values) // 2])
        for p in self.predictors:
            if p.level is not None:
                p.level = y - (p.profile.offset(t) if p.profile is not None else 0.0)
        for judge in self.judges:
            judge.recent.clear()

    def _learn(self, x: float, t: float | None) -> None:
        if not self._observed:  # used river-style, learn_one alone: it sees the point too
            self._observe(x, t)
        self._observed = False
        self._learn_predictors(x, t)

    def _learn_predictors(self, x: float, t: float | None) -> None:
        y = self._tx(x)
        self._learn_interval(t)
        chosen = self.errors[self.chosen]
        clip = 4.0 * self._scale(self.chosen, y) if chosen.points else math.inf
        for k, p in enumerate(self.predictors):
            pred = p.predict(t)
            if pred is not None:
                self.errors[k].learn(abs(y - pred), self._scale(k, pred))
            p.learn(y, t, 4.0 * self._scale(k, y) if self.errors[k].points else clip)
        for prof in self.profiles:
            prof.learn(y, t, clip)
        self._choose()

    def _choose(self) -> None:
        current = self.errors[self.chosen]
        best = current.fit if current.points >= WARM else None
        for k, e in enumerate(self.errors):
            if e.points < CHOOSE_AFTER or k == self.chosen:
                continue
            if best is None or e.fit < (1.0 - self.switch_margin) * best:
                self.chosen, best = k, e.fit

    def _learn_interval(self, t: float | None) -> None:
        if t is None:
            return
        if self._last_t is not None and t > self._last_t and len(self._gaps) < 16:
            self._gaps.append(t - self._last_t)
            if len(self._gaps) == 16:
                self._configure(median(self._gaps))
        self._last_t = t if self._last_t is None else max(t, self._last_t)

    def _configure(self, gap: float) -> None:
        """Drop the seasonal models whose period is too short for the sampling interval."""
        chosen = self.predictors[self.chosen]
        self.profiles = [p for p in self.profiles if p.configure(gap)]
        keep = [
            k
            for k, p in enumerate(self.predictors)
            if p.profile is None or p.profile in self.profiles
        ]
        self.predictors = [self.predictors[k] for k in keep]
        self.errors = [self.errors[k] for k in keep]
        self.judges = [self.judges[k] for k in keep]
        self.chosen = self.predictors.index(chosen)

    def _big(self, x: float, pred: float) -> bool:
        """``x`` is at least ``1 + big_change`` times the prediction (x3 at 2.0), in the
        signal's own units; for ``side: down``, the prediction that many times ``x``. Drops
        of a ``both`` series are judged by the tails alone (a drop is at most x0)."""
        expected = self._range(pred, pred)[0]
        if self.side == "down":
            return expected - x >= self.big_change * max(abs(x), 1e-12)
        return x - expected >= self.big_change * max(abs(expected), 1e-12)

    def _ratio(self, x: float, pred: float) -> float:
        """log(value / expected) in the direction watched (for ``side: down`` the inverse)."""
        expected = max(abs(self._range(pred, pred)[0]), 1e-12)
        value = max(abs(x), 1e-12)
        return math.log(expected / value) if self.side == "down" else math.log(value / expected)

    def _score(self, x: float, t: float | None) -> float:
        judged = self._judged(self.chosen, self._tx(x), t)
        judge = self.judges[self.chosen]
        if judged is None or not judge.point.ready:
            return 0.0
        pred, z = judged
        p = judge.probability(z, self.side)
        d_point = directed(z, self.side)
        if (
            self.big_change
            and d_point > BIG_FROM
            and self._big(x, pred)
            and (self.big_rate < BIG_RARE or self._ratio(x, pred) > self.big_seen + BIG_BEYOND)
        ):
            p = min(p, math.exp(-(d_point - BIG_FROM) / self.big_beta))
        return probability_to_score(p)

    def expected(self, t: float | None = None) -> tuple[float, float] | None:
        """Values whose point deviation stays below a 0.9 score."""
        pred = self.predictors[self.chosen].predict(t)
        judge = self.judges[self.chosen]
        if pred is None or not judge.point.ready:
            return None
        half = judge.point.deviation_at(score_to_probability(0.9) / 2) * self._scale(
            self.chosen, pred
        )
        return self._range(pred - half, pred + half)
