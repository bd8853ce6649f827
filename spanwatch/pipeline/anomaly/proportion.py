"""Proportions (error rates): a jump of the share above its EW baseline.

The spread has a binomial floor ``sqrt(p (1 - p) / n_ref)`` and an absolute floor, so a series
that is almost always at 0 % errors alarms on a real burst, not on one failed call.
"""

from __future__ import annotations

import math

from .base import Detector, directed, register, z_to_score


@register("proportion")
class ProportionDetector(Detector):
    def __init__(
        self,
        *,
        alpha: float = 0.05,
        z_alarm: float = 4.0,
        side: str = "up",
        n_ref: int = 100,
        min_abs_spread: float = 0.01,
        grace_period: int = 20,
    ) -> None:
        if not 0 < alpha <= 1 or n_ref < 1 or side not in ("up", "down", "both"):
            raise ValueError("alpha in (0, 1], n_ref >= 1, side up|down|both")
        self.alpha, self.z_alarm, self.side, self.n_ref = alpha, z_alarm, side, n_ref
        self.min_abs_spread = min_abs_spread
        self.grace_period = grace_period
        self.p: float | None = None
        self.var = 0.0

    def _spread(self) -> float:
        p = min(max(self.p or 0.0, 0.0), 1.0)
        return max(math.sqrt(self.var), math.sqrt(p * (1 - p) / self.n_ref), self.min_abs_spread)

    def _learn(self, x: float, t: float | None) -> None:
        x = min(max(x, 0.0), 1.0)
        if self.p is None:
            self.p = x
            return
        d = x - self.p
        self.p += self.alpha * d
        self.var += self.alpha * (d * d - self.var)

    def _score(self, x: float, t: float | None) -> float:
        x = min(max(x, 0.0), 1.0)
        return z_to_score(directed(x - (self.p or 0.0), self.side) / self._spread(), self.z_alarm)

    def expected(self, t: float | None = None) -> tuple[float, float] | None:
        if self.p is None:
            return None
        half = self.z_alarm * self._spread()
        return (max(self.p - half, 0.0), min(self.p + half, 1.0))
