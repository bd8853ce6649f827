"""A mergeable quantile sketch with bounded relative error (DDSketch-style log buckets).

Values > 0 land in bucket ``ceil(log_gamma(x))`` with ``gamma = (1 + a) / (1 - a)``; the
bucket's representative value ``2 * gamma**i / (gamma + 1)`` is within relative error ``a``
of every value in it, so every quantile is within ``a`` of the exact rank's value. Zeros are
counted apart. Counts are integers, so merging is exact, associative and commutative: the
same values give the same sketch whatever order or worker they came from.

Buckets live in a dict: a window of one series sees few distinct buckets.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

DEFAULT_RELATIVE_ACCURACY = 0.01
MIN_POSITIVE = 1e-9  # values below this (and 0) count as zero


class QuantileSketch:
    """Mergeable sketch of non-negative values; ``quantile(q)`` within ``relative_accuracy``."""

    __slots__ = ("_log_gamma", "alpha", "buckets", "count", "max", "min", "zeros")

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        if not 0 < relative_accuracy < 1:
            raise ValueError("relative_accuracy must be in (0, 1)")
        self.alpha = relative_accuracy
        self._log_gamma = math.log((1 + relative_accuracy) / (1 - relative_accuracy))
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.min = math.inf
        self.max = -math.inf

    def add(self, x: float) -> None:
        if x < MIN_POSITIVE:
            self.zeros += 1
        else:
            i = math.ceil(math.log(x) / self._log_gamma)
            self.buckets[i] = self.buckets.get(i, 0) + 1
        self.count += 1
        if x < self.min:
            self.min = x
        if x > self.max:
            self.max = x

    def add_many(self, values: Iterable[float]) -> None:
        """Add values; bucket indexes use ``math.log`` exactly like :meth:`add`, so a value
        lands in the same bucket whichever way it was added (numpy's log may differ in the
        last bit at a bucket boundary, which would break worker-count independence)."""
        add = self.add
        for x in values:
            add(x)

    def merge(self, other: QuantileSketch) -> None:
        if other.alpha != self.alpha:
            raise ValueError("cannot merge sketches of different accuracy")
        b = self.buckets
        for k, c in other.buckets.items():
            b[k] = b.get(k, 0) + c
        self.zeros += other.zeros
        self.count += other.count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """Value at quantile ``q`` in [0, 1] (lower rank convention); None when empty."""
        if self.count == 0:
            return None
        if not 0 <= q <= 1:
            raise ValueError("q must be in [0, 1]")
        rank = q * (self.count - 1)
        if rank < self.zeros:
            return 0.0
        seen = self.zeros
        gamma = math.exp(self._log_gamma)
        for k in sorted(self.buckets):
            seen += self.buckets[k]
            if seen > rank:
                value = 2 * gamma**k / (gamma + 1)
                return min(max(value, self.min), self.max)
        return self.max

    def bucket_counts(self, bounds: Sequence[float]) -> list[int]:
        """Counts per histogram bucket: ``out[i]`` holds the values in ``(bounds[i-1],
        bounds[i]]`` and ``out[-1]`` those above the last bound (``bounds`` ascending). Each
        sketch bucket goes where its representative value (the one :meth:`quantile` reports)
        falls, so only values within the relative accuracy of a bound can land one bucket
        off, the same way on every worker. Zeros land in the first bucket."""
        out = [0] * (len(bounds) + 1)
        out[0] = self.zeros
        gamma = math.exp(self._log_gamma)
        for k, c in self.buckets.items():
            value = min(max(2 * gamma**k / (gamma + 1), self.min), self.max)
            out[bisect_left(bounds, value)] += c
        return out

    def to_dict(self) -> dict[str, Any]:
        # Sorted keys and their counts as two flat lists: built and read back at C speed
        # (a list of [key, count] pairs cost a Python object per bucket, and this runs for
        # every window of every partial). ``from_dict`` still reads the older pair form.
        keys = sorted(self.buckets)
        return {
            "alpha": self.alpha,
            "zeros": self.zeros,
            "count": self.count,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "keys": keys,
            "counts": list(map(self.buckets.__getitem__, keys)),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantileSketch:
        s = cls(d["alpha"])
        s.zeros = int(d["zeros"])
        s.count = int(d["count"])
        if "keys" in d:
            s.buckets = dict(zip(d["keys"], d["counts"], strict=True))
        else:
            s.buckets = {int(k): int(c) for k, c in d["buckets"]}
        if s.count:
            s.min, s.max = float(d["min"]), float(d["max"])
        return s

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, QuantileSketch)
            and self.alpha == other.alpha
            and self.zeros == other.zeros
            and self.count == other.count
            and self.buckets == other.buckets
            and (not self.count or (self.min, self.max) == (other.min, other.max))
        )

    def __repr__(self) -> str:
        return f"QuantileSketch(count={self.count}, buckets={len(self.buckets)})"
