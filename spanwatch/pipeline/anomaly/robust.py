"""Robust baseline: median and MAD of the last ``window`` learned points.

For heavy-tailed positive signals (latencies) use ``log=True``: the deviation is measured on
``log1p(x)``, so a p95 going from 0.8 s to 4 s is as striking as from 8 s to 40 s. The MAD has
a floor (``min_rel_spread`` of the median, ``min_abs_spread``) so a flat series does not turn
every tiny wiggle into an alarm.
"""

from __future__ import annotations

import numpy as np

from .base import Detector, directed, register, z_to_score

MAD_TO_SIGMA = 1.4826


@register("robust")
class RobustDetector(Detector):
    def __init__(
        self,
        *,
        window: int = 120,
        z_alarm: float = 4.0,
        side: str = "up",
        log: bool = False,
        min_rel_spread: float = 0.05,
        min_abs_spread: float = 1e-6,
        grace_period: int = 20,
    ) -> None:
        if window < 3 or z_alarm <= 0 or side not in ("up", "down", "both"):
            raise ValueError("window >= 3, z_alarm > 0, side up|down|both")
        self.window, self.z_alarm, self.side, self.log = window, z_alarm, side, log
        self.min_rel_spread, self.min_abs_spread = min_rel_spread, min_abs_spread
        self.grace_period = grace_period
        self._ring = np.zeros(window)  # last ``window`` learned values (transformed)
        self._count = 0
        self._stats: tuple[float, float] | None = None

    def _center_spread(self) -> tuple[float, float]:
        if self._stats is None:
            arr = self._ring[: min(self._count, self.window)]
            med = float(np.median(arr))
            mad = float(np.median(np.abs(arr - med))) * MAD_TO_SIGMA
            self._stats = (med, self._floor(mad, med))
        return self._stats

    def _learn(self, x: float, t: float | None) -> None:
        self._ring[self._count % self.window] = self._tx(x)
        self._count += 1
        self._stats = None

    def _score(self, x: float, t: float | None) -> float:
        med, spread = self._center_spread()
        return z_to_score(directed(self._tx(x) - med, self.side) / spread, self.z_alarm)

    def expected(self, t: float | None = None) -> tuple[float, float] | None:
        """Values inside never alarm: median +- ``z_alarm`` robust sigmas."""
        if not self._count:
            return None
        med, spread = self._center_spread()
        return self._range(med - self.z_alarm * spread, med + self.z_alarm * spread)
