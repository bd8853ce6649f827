"""Forecast-error detector: river's Holt-Winters forecaster predicts the next point; the
error is compared with an EW estimate of past forecast errors.

Holt's trend term follows slow, legitimate drifts (traffic growing through the day) that a
flat baseline would call anomalous, while a jump away from the forecast still stands out.
"""

from __future__ import annotations

import math

from river import time_series

from .base import Detector, directed, register, z_to_score


@register("forecast")
class ForecastDetector(Detector):
    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float = 0.05,
        z_alarm: float = 4.0,
        side: str = "both",
        error_alpha: float = 0.05,
        log: bool = False,
        min_rel_spread: float = 0.05,
        min_abs_spread: float = 1e-6,
        grace_period: int = 30,
    ) -> None:
        if side not in ("up", "down", "both"):
            raise ValueError("side up|down|both")
        self.model = time_series.HoltWinters(alpha=alpha, beta=beta)
        self.z_alarm, self.side, self.error_alpha, self.log = z_alarm, side, error_alpha, log
        self.min_rel_spread, self.min_abs_spread = min_rel_spread, min_abs_spread
        self.grace_period = grace_period
        self.err_var = 0.0
        self.last: float | None = None
        self.ready = False

    def _predict(self) -> float:
        if self.ready:
            try:
                return float(self.model.forecast(horizon=1)[0])
            except (ValueError, IndexError, ZeroDivisionError):
                pass
        return self.last or 0.0

    def _spread(self, pred: float) -> float:
        return self._floor(math.sqrt(self.err_var), pred)

    def _learn(self, x: float, t: float | None) -> None:
        y = self._tx(x)
        if self.last is not None:
            err = y - self._predict()
            self.err_var += self.error_alpha * (err * err - self.err_var)
        self.model.learn_one(y)
        self.last = y
        self.ready = self.n_learned >= 2  # Holt needs two points for a trend

    def _score(self, x: float, t: float | None) -> float:
        pred = self._predict()
        return z_to_score(
            directed(self._tx(x) - pred, self.side) / self._spread(pred), self.z_alarm
        )

    def expected(self, t: float | None = None) -> tuple[float, float] | None:
        if self.last is None:
            return None
        pred = self._predict()
        half = self.z_alarm * self._spread(pred)
        return self._range(pred - half, pred + half)
