"""One-step predictors of a series' next value, for the ``auto`` detector to choose from.

A predictor is a :class:`Level` of the series, optionally on top of a :class:`Profile` (the
series minus its seasonal offsets):

* :class:`Level`: an exponentially weighted level; a fast one follows a wandering series, a
  slow one averages out the noise of a stationary one;
* :class:`Profile`: one additive offset per slot of a period (a day, a week), learned
  against a slow level of the deseasonalized series (additive Holt-Winters), so that a
  scheduled job at 07:00 or an evening rush hour is expected, and a quiet night is not an
  outage. Slots are as wide as the sampling interval, at most ``max_slots`` per period, so
  memory is bounded whatever the rate. It is ready once ``min_periods`` periods were seen.

Updates are clipped at ``clip`` (the caller's residual scale times a few), so one spike moves
no predictor far.
"""

from __future__ import annotations

import numpy as np


def _clip(x: float, c: float) -> float:
    return x if -c <= x <= c else (c if x > 0 else -c)


class Profile:
    def __init__(
        self,
        period_s: float,
        name: str,
        *,
        alpha: float = 0.05,
        gamma: float = 0.3,
        max_slots: int = 1440,
        min_periods: float = 1.5,
    ) -> None:
        self.period_s, self.name = period_s, name
        self.alpha, self.gamma, self.max_slots = alpha, gamma, max_slots
        self.min_periods = min_periods
        self.base: float | None = None  # slow level of the deseasonalized series
        self.offsets: np.ndarray | None = None  # one per slot, float32
        self.seen: np.ndarray | None = None  # bool per slot
        self.first_t: float | None = None
        self.last_t: float | None = None

    def configure(self, interval_s: float) -> bool:
        """Fix the slot width from the sampling interval; False if the period holds fewer
        than four points (a daily cycle of daily points is no cycle)."""
        if self.offsets is not None:
            return True
        if interval_s <= 0 or self.period_s / interval_s < 4:
            return False
        slots = int(min(self.max_slots, round(self.period_s / interval_s)))
        self.offsets = np.zeros(slots, dtype=np.float32)
        self.seen = np.zeros(slots, dtype=bool)
        return True

    def _slot(self, t: float) -> int:
        assert self.offsets is not None
        n = len(self.offsets)
        return int((t % self.period_s) / self.period_s * n) % n

    @property
    def ready(self) -> bool:
        if self.seen is None or self.first_t is None or self.last_t is None:
            return False
        return self.last_t - self.first_t >= self.min_periods * self.period_s and bool(
            self.seen.mean() >= 0.8
        )

    def offset(self, t: float | None) -> float:
        """The learned offset at ``t`` (0 where nothing was learned yet)."""
        if t is None or self.offsets is None or self.seen is None:
            return 0.0
        slot = self._slot(t)
        return float(self.offsets[slot]) if self.seen[slot] else 0.0

    def learn(self, y: float, t: float | None, clip: float) -> None:
        if t is None or self.offsets is None or self.seen is None:
            return
        self.first_t = t if self.first_t is None else min(self.first_t, t)
        self.last_t = t if self.last_t is None else max(self.last_t, t)
        slot = self._slot(t)
        if self.base is None:
            self.base = y
        if not self.seen[slot]:
            self.offsets[slot] = y - self.base
            self.seen[slot] = True
            return
        offset = float(self.offsets[slot])
        self.base += self.alpha * _clip(y - offset - self.base, clip)
        self.offsets[slot] = offset + self.gamma * _clip(y - self.base - offset, clip)


class Level:
    """An EW level of the series, or of the series minus ``profile``'s offsets."""

    def __init__(self, alpha: float, profile: Profile | None = None) -> None:
        self.alpha, self.profile = alpha, profile
        self.level: float | None = None
        speed = "fast" if alpha >= 0.2 else "slow"
        self.name = f"{speed}+{profile.name}" if profile else speed

    def predict(self, t: float | None) -> float | None:
        if self.level is None:
            return None
        if self.profile is None:
            return self.level
        return self.level + self.profile.offset(t) if self.profile.ready else None

    def learn(self, y: float, t: float | None, clip: float) -> None:
        u = y - self.profile.offset(t) if self.profile else y
        if self.level is None:
            self.level = u
        else:
            self.level += self.alpha * _clip(u - self.level, clip)
