"""Change-point detector for level shifts: two one-sided CUSUMs of standardized deviations.

Small shifts that no single point reveals add up: ``S+ = max(0, S+ + z - drift)`` grows while
the series stays above its baseline (``S-`` likewise below) and the score reaches 0.9 when a
sum reaches ``h``. The baseline is a slow EWMA (``alpha``), so a daily cycle is followed while
a step is not; the spread only learns while the sums are zero (in control), so a shift does
not widen it. A shift accepted by the scoring policy (``adapt_after``) re-baselines.
"""

from __future__ import annotations

import math

from .base import Detector, register, z_to_score


@register("cusum")
class CusumDetector(Detector):
    def __init__(
        self,
        *,
        drift: float = 0.5,
        h: float = 8.0,
        side: str = "up",
        alpha: float = 0.02,
        log: bool = False,
        min_rel_spread: float = 0.02,
        min_abs_spread: float = 1e-6,
        grace_period: int = 30,
    ) -> None:
        if drift < 0 or h <= 0 or side not in ("up", "down", "both"):
            raise ValueError("drift >= 0, h > 0, side up|down|both")
        self.drift, self.h, self.side, self.alpha, self.log = drift, h, side, alpha, log
        self.min_rel_spread, self.min_abs_spread = min_rel_spread, min_abs_spread
        self.grace_period = grace_period
        self.mean: float | None = None
        self.var = 0.0
        self.up = 0.0
        self.down = 0.0

    def _spread(self) -> float:
        return self._floor(math.sqrt(self.var), self.mean or 0.0)

    def _sums(self, y: float) -> tuple[float, float]:
        z = (y - (self.mean or 0.0)) / self._spread()
        up = max(0.0, self.up + z - self.drift) if self.side != "down" else 0.0
        down = max(0.0, self.down - z - self.drift) if self.side != "up" else 0.0
        return up, down  # an unwatched side stays 0: it must not freeze the baseline

    def _stat(self, up: float, down: float) -> float:
        return {"up": up, "down": down}.get(self.side, max(up, down))

    def _learn(self, x: float, t: float | None) -> None:
        y = self._tx(x)
        if self.mean is None:
            self.mean = y
            return
        if self.n_learned < self.grace_period:  # warm-up: plain running mean and variance
            d = y - self.mean
            self.mean += d / (self.n_learned + 1)
            self.var += (d * (y - self.mean) - self.var) / (self.n_learned + 1)
            return
        self.up, self.down = self._sums(y)
        if self._stat(self.up, self.down) >= self.h:  # learned beyond h: shift accepted
            self.mean, self.up, self.down = y, 0.0, 0.0
            return
        d = y - self.mean
        self.mean += self.alpha * d  # the baseline follows slow (e.g. daily) movements
        if self.up == 0.0 and self.down == 0.0:  # the spread only learns in control
            self.var += self.alpha * (d * d - self.var)

    def _score(self, x: float, t: float | None) -> float:
        if self.mean is None:
            return 0.0
        return z_to_score(self._stat(*self._sums(self._tx(x))), self.h)

    def expected(self, t: float | None = None) -> tuple[float, float] | None:
        """Values that keep the sums below ``h`` at the next point."""
        if self.mean is None:
            return None
        sp = self._spread()
        hi = self.mean + (self.h - self.up + self.drift) * sp
        lo = self.mean - (self.h - self.down + self.drift) * sp
        return self._range(lo, hi)
