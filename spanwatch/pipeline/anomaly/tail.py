"""Calibrating deviations into tail probabilities (peaks over threshold).

A detector's raw deviation means different things on different series: |z| = 4 is rare on a
smooth latency series and happens every hour on a spiky one. :class:`TailCalibrator` learns
the distribution of a non-negative deviation ``d`` from the series' own recent history and
answers ``P(D >= d)``: from an exponentially decayed histogram (``history`` points of memory,
log-spaced bins, a few hundred bytes whatever the history) up to its ``q``-quantile ``u``, and
above ``u`` from an exponential tail whose scale is the mean excess over ``u`` (the
peaks-over-threshold model of extreme-value theory, as in SPOT, Siffer et al. 2017). A
deviation beyond anything seen gets a small probability rather than the ``1 / history``
floor of a purely empirical estimate.

:func:`probability_to_score` turns that probability into a score in [0, 1] that reads as
rarity: each 0.2 is one decade, ``0.9`` is "one normal point in ~30,000 is this extreme".
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

DECADES = 5.0  # score 1.0 = probability 1e-5
_EDGES = np.concatenate(([0.0], np.geomspace(0.02, 2000.0, 52)))  # deviation bins (+ overflow)
_CENTERS = np.concatenate(((_EDGES[:-1] + _EDGES[1:]) / 2, [_EDGES[-1] * 1.25]))
_EDGE_LIST = tuple(float(e) for e in _EDGES)  # bisect on a tuple: faster than numpy per value


def probability_to_score(p: float) -> float:
    if p >= 1.0 or math.isnan(p):
        return 0.0
    return 1.0 if p <= 0.0 else min(-math.log10(p) / DECADES, 1.0)


def score_to_probability(score: float) -> float:
    return float(10.0 ** (-score * DECADES))


class TailCalibrator:
    """``P(D >= d)`` from a decayed histogram of learned deviations."""

    def __init__(
        self,
        *,
        history: int = 1000,
        q: float = 0.9,
        refit: int = 10,
        min_points: int = 30,
        min_scale: float = 0.5,
    ) -> None:
        if history < 20 or not 0.5 <= q < 1 or refit < 1 or min_scale <= 0:
            raise ValueError("history >= 20, q in [0.5, 1), refit >= 1, min_scale > 0")
        self.q, self.refit, self.min_points = q, refit, min_points
        self.min_scale = min_scale  # floor of the tail scale, in units of the deviation
        self._decay = 1.0 / (1.0 - 1.0 / history)  # weight growth per point (lazy decay)
        self._counts = np.zeros(len(_CENTERS), dtype=np.float32)
        self._weight = 1.0
        self.count = 0
        self._u = 0.0  # the q-quantile
        self._beta = min_scale  # mean excess over u
        self._tail = 1.0 - q
        self._cdf_edges: np.ndarray | None = None  # P(D >= lower edge of bin i)

    @property
    def ready(self) -> bool:
        return self.count >= self.min_points

    def learn(self, d: float) -> None:
        if math.isnan(d):
            return
        i = bisect_right(_EDGE_LIST, d) - 1
        self._counts[min(max(i, 0), len(_CENTERS) - 1)] += self._weight
        self._weight *= self._decay
        if self._weight > 1e30:  # renormalize before the float32 weights overflow
            self._counts /= self._weight
            self._weight = 1.0
        self.count += 1
        if self.count <= self.min_points or self.count % self.refit == 0:
            self._fit()

    def _fit(self) -> None:
        counts = self._counts.astype(np.float64)
        total = counts.sum()
        if total <= 0:
            return
        above = np.cumsum(counts[::-1])[::-1] / total  # P(D >= lower edge of bin i)
        self._cdf_edges = above.astype(np.float32)
        # the tail starts at the q-quantile, or at 1 % once there is history enough for it:
        # a heavy tail (routine big spikes) is then measured by its own top, not by the bulk
        q = max(self.q, 0.99) if self.count >= 300 else self.q
        k = int(np.nonzero(above >= 1.0 - q)[0][-1])  # bin holding the quantile
        self._u = float(_EDGES[k]) if k < len(_EDGES) else float(_EDGES[-1])
        tail = counts[k:]
        self._tail = float(above[k])
        excess = float((tail * (_CENTERS[k:] - self._u)).sum() / max(tail.sum(), 1e-300))
        # a floor on the tail scale: a flat history must not make every wiggle "1e-300"
        self._beta = max(excess, self.min_scale)

    def probability(self, d: float) -> float:
        if not self.ready or self._cdf_edges is None or math.isnan(d):
            return 1.0
        if d <= self._u:
            return float(self._cdf_edges[max(bisect_right(_EDGE_LIST, d) - 1, 0)])
        return self._tail * math.exp(-(d - self._u) / self._beta)

    def deviation_at(self, p: float) -> float:
        """The smallest deviation whose probability is at most ``p`` (for expected ranges)."""
        if p >= self._tail:
            return self._u
        return self._u + self._beta * math.log(self._tail / p)
