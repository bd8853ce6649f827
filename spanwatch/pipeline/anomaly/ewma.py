"""EWMA baseline with an optional daily (or any period) profile.

``expected(t) = level * profile[slot(t)]`` where the profile holds one multiplicative factor per
slot of the period (24 hourly slots of a day by default), learned as an EW mean of
``x / level``; the deviation is measured against an EW estimate of the residual spread. With
``period_s: 0`` it is a plain EWMA. Traffic that is busy every afternoon is then normal every
afternoon, and a quiet night is not an outage.
"""

from __future__ import annotations

import math

from .base import Detector, directed, register, z_to_score


@register("ewma")
class EwmaDetector(Detector):
    def __init__(
        self,
        *,
        alpha: float = 0.1,
        spread_alpha: float = 0.05,
        z_alarm: float = 4.0,
        side: str = "both",
        period_s: float = 86_400.0,
        slots: int = 24,
        profile_alpha: float = 0.2,
        log: bool = False,
        min_rel_spread: float = 0.05,
        min_abs_spread: float = 1e-6,
        grace_period: int = 30,
    ) -> None:
        if not (0 < alpha <= 1 and 0 < spread_alpha <= 1 and 0 < profile_alpha <= 1):
            raise ValueError("alphas in (0, 1]")
        if side not in ("up", "down", "both") or slots < 1 or period_s < 0:
            raise ValueError("side up|down|both, slots >= 1, period_s >= 0")
        self.alpha, self.spread_alpha, self.z_alarm = alpha, spread_alpha, z_alarm
        self.side, self.log = side, log
        self.period_s, self.slots, self.profile_alpha = period_s, slots, profile_alpha
        self.min_rel_spread, self.min_abs_spread = min_rel_spread, min_abs_spread
        self.grace_period = grace_period
        self.level: float | None = None
        self.var = 0.0
        self.profile = [1.0] * slots
        self.seen = [0] * slots

    def _slot(self, t: float | None) -> int:
        if not self.period_s or t is None:
            return 0
        return int((t % self.period_s) / self.period_s * self.slots) % self.slots

    def _factor(self, slot: int) -> float:
        return self.profile[slot] if self.period_s else 1.0

    def _predict(self, t: float | None) -> float:
        return (self.level or 0.0) * self._factor(self._slot(t))

    def _spread(self, pred: float) -> float:
        return self._floor(math.sqrt(self.var), pred)

    def _learn(self, x: float, t: float | None) -> None:
        y = self._tx(x)
        slot = self._slot(t)
        if self.level is None:
            self.level = y
            return
        pred = self._predict(t)
        err = y - pred
        self.var += self.spread_alpha * (err * err - self.var)  # inf, never OverflowError
        factor = self._factor(slot)
        deseasoned = y / factor if factor else y
        self.level += self.alpha * (deseasoned - self.level)
        if self.period_s and self.level:
            a = self.profile_alpha if self.seen[slot] else 1.0  # first visit: take it
            self.profile[slot] += a * (y / self.level - self.profile[slot])
            self.seen[slot] += 1

    def _score(self, x: float, t: float | None) -> float:
        pred = self._predict(t)
        return z_to_score(
            directed(self._tx(x) - pred, self.side) / self._spread(pred), self.z_alarm
        )

    def expected(self, t: float | None = None) -> tuple[float, float] | None:
        if self.level is None:
            return None
        pred = self._predict(t)
        half = self.z_alarm * self._spread(pred)
        return self._range(pred - half, pred + half)
