"""The detector contract, the registry, and the scoring policy shared by the agent and the
backtest command.

A detector (river's ``anomaly/base.py`` shape) has ``learn_one(x, t)`` and
``score_one(x, t) -> float`` in [0, 1] (high = anomalous), a ``grace_period`` of learned
points during which it scores 0, and ``expected(t)`` -> the range it considers normal.
``observe_one(x, t)`` sees every point, anomalous ones included (the rate of extremes).
``x`` is a float or ``None``/NaN (missing: scored 0, not learned); ``t`` is the point's time
in seconds (used by seasonal models, ignored by others).

:class:`AnomalyScorer` applies one policy around any detector: score first, then learn only
from points that were not anomalous, so an incident does not become the new normal; a change
that persists for ``adapt_after`` points in a row is learned (a deployment that really made
the model slower is a new baseline, not an endless alert).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ..common.errors import ConfigError
from ..common.registry import Registry

LIMIT = 1e12  # values are clamped to +-LIMIT: no real window signal is larger, and the
# arithmetic of every detector stays finite (no inf - inf in an expected range)


def clamp(x: float) -> float:
    return LIMIT if x > LIMIT else -LIMIT if x < -LIMIT else x


def missing(x: float | None) -> bool:
    return x is None or not math.isfinite(x)


def expm1_safe(y: float) -> float:
    """Inverse of ``log1p`` for expected ranges, without overflowing on absurd bounds."""
    return math.expm1(min(y, 700.0))


def z_to_score(z: float, z_alarm: float) -> float:
    """|z| -> [0, 1): 0.9 exactly at ``z_alarm``, 0.44 at half of it, 0.9999 at twice it."""
    if z <= 0 or math.isnan(z):
        return 0.0
    r = z / z_alarm
    return 1.0 if r > 10 else 1.0 - 0.1 ** (r * r)


def directed(deviation: float, side: str) -> float:
    """Keep only the deviations the side cares about (``up``, ``down``, ``both``)."""
    if side == "up":
        return max(deviation, 0.0)
    if side == "down":
        return max(-deviation, 0.0)
    return abs(deviation)


class Detector:
    """Base class; subclasses implement ``_learn``, ``_score`` and ``expected``."""

    name: ClassVar[str] = ""
    grace_period: int = 30
    n_learned: int = 0
    log: bool = False  # measure deviations on log1p(x) (positive, heavy-tailed signals)
    min_rel_spread: float = 0.05  # spread floor, relative to the expected value...
    min_abs_spread: float = 1e-6  # ...and absolute: a flat series is not all alarms

    def _tx(self, x: float) -> float:
        return math.log1p(max(x, 0.0)) if self.log else x

    def _floor(self, spread: float, center: float) -> float:
        return max(spread, self.min_rel_spread * abs(center), self.min_abs_spread)

    def _range(self, lo: float, hi: float) -> tuple[float, float]:
        """An expected range computed on ``_tx`` values, in the signal's own units."""
        if self.log:
            return (max(expm1_safe(lo), 0.0), expm1_safe(hi))
        return (lo, hi)

    def learn_one(self, x: float | None, t: float | None = None) -> None:
        if missing(x):
            return
        assert x is not None
        self._learn(clamp(x), t)
        self.n_learned += 1

    def score_one(self, x: float | None, t: float | None = None) -> float:
        if missing(x) or self.n_learned < self.grace_period:
            return 0.0
        assert x is not None
        s = self._score(clamp(x), t)
        return 0.0 if math.isnan(s) else min(max(s, 0.0), 1.0)

    def observe_one(
        self, x: float | None, t: float | None = None, *, ongoing: bool = False
    ) -> None:
        """See every point, anomalous ones included (``learn_one`` sees only normal ones).

        For statistics about how often extremes happen, which must count the extremes: a
        series whose spikes are routine learns that they are. ``ongoing``: the point
        continues an anomaly already counted, so it is no new extreme (a seasonal model may
        still learn its time slot from it). Default: nothing."""
        if missing(x):
            return
        assert x is not None
        if ongoing:
            self._observe_ongoing(clamp(x), t)
        else:
            self._observe(clamp(x), t)

    def _observe(self, x: float, t: float | None) -> None:
        return None

    def _observe_ongoing(self, x: float, t: float | None) -> None:
        return None

    def rebase(self, values: list[float], t: float | None) -> None:
        """A change that lasted is the new normal: ``values`` are its latest points. A
        detector with a level sets it there at once, instead of walking to it over errors
        that would teach its noise model that the series is wild. Default: nothing."""
        return None

    def expected(self, t: float | None = None) -> tuple[float, float] | None:
        """The normal range at ``t`` (None until the grace period has passed)."""
        raise NotImplementedError

    def _learn(self, x: float, t: float | None) -> None:
        raise NotImplementedError

    def _score(self, x: float, t: float | None) -> float:
        raise NotImplementedError


def _load() -> None:
    from . import auto, cusum, ewma, forecast, proportion, robust  # noqa: F401


DETECTORS: Registry[Detector] = Registry("detector", _load)
register = DETECTORS.register
registered = DETECTORS.classes


def build_detector(spec: dict[str, Any]) -> Detector:
    """``{"detector": "robust", ...params}`` -> a detector; errors are :class:`ConfigError`."""
    params = {k: v for k, v in spec.items() if k not in ("threshold", "adapt_after")}
    return DETECTORS.build(params.pop("detector", None), params)


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    t: float
    value: float | None
    score: float  # how surprising the point is, given an anomaly already under way
    expected: tuple[float, float] | None  # before learning this point
    anomalous: bool  # the series is away from its normal (an event from start to end)
    raw: float = 0.0  # the point against the normal model alone


EVENT_MEMORY = 9  # values of an ongoing event its level is read from (their median)


class AnomalyScorer:
    """Score, then learn unless anomalous (``adapt_after`` anomalous points in a row are
    learned: a lasting change becomes the baseline). Picklable: the agent persists it.

    **One event, not one alarm per point.** Consecutive anomalous points are one event, from
    its first point to the first normal one. While an event lasts, a point is also judged
    against the event itself: the median of its last :data:`EVENT_MEMORY` values, with the
    normal range's half-width as the unit, so that ``threshold`` is crossed again only by a
    point as far from the event as the event's start was from normal. A level shift or a
    series that leaves a long flat stretch is then one high score at its start, with
    ``anomalous`` true until it ends or is learned; an escalation scores high again.
    ``raw`` keeps every point's score against the normal model alone. The detector's
    statistics of extremes see an event once (its first point), so a long incident does not
    teach it that extremes are common; when the event lasts ``adapt_after`` points the
    detector is rebased on it (:meth:`Detector.rebase`) and learns from then on."""

    def __init__(
        self, detector: Detector, *, threshold: float = 0.9, adapt_after: int = 30
    ) -> None:
        if not 0 < threshold <= 1:
            raise ConfigError(f"threshold {threshold} outside (0, 1]")
        self.detector, self.threshold, self.adapt_after = detector, threshold, adapt_after
        self.streak = 0
        self.last_t: float | None = None
        self.event: list[float] = []  # the last values of the ongoing event

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> AnomalyScorer:
        return cls(
            build_detector(spec),
            threshold=float(spec.get("threshold", 0.9)),
            adapt_after=int(spec.get("adapt_after", 30)),
        )

    def process(self, x: float | None, t: float) -> ScoredPoint:
        det = self.detector
        expected = det.expected(t) if det.n_learned >= det.grace_period else None
        raw = det.score_one(x, t)
        anomalous = raw >= self.threshold
        score = raw
        ongoing = anomalous and bool(self.event)
        if ongoing and expected is not None:
            score = min(raw, self._within_event(x, expected))
        det.observe_one(x, t, ongoing=ongoing)  # an event is one extreme, however long
        if anomalous:
            self.streak += 1
            if x is not None and not missing(x):
                self.event = [*self.event[-(EVENT_MEMORY - 1) :], clamp(x)]
            if self.streak == self.adapt_after:
                det.rebase(self.event, t)
            if self.streak >= self.adapt_after:
                det.learn_one(x, t)
        else:
            self.streak = 0
            self.event = []
            det.learn_one(x, t)
        self.last_t = t
        return ScoredPoint(t, None if missing(x) else x, score, expected, anomalous, raw)

    def _within_event(self, x: float | None, expected: tuple[float, float]) -> float:
        """The score of ``x`` against the ongoing event: its distance from the event's
        level in half-widths of the normal range (one half-width scores ``threshold``)."""
        if x is None or missing(x):
            return 0.0
        half = (expected[1] - expected[0]) / 2.0
        if not half > 0.0:
            return 1.0
        level = sorted(self.event)[len(self.event) // 2]
        return min(self.threshold * abs(clamp(x) - level) / half, 1.0)
