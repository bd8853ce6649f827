"""The contract of everything a window holds: sketches and counters that merge.

Partial windows from several workers are combined, so an aggregate must merge exactly,
associatively and commutatively (integer counts, integer-nanosecond sums, bucket counts), and
travel as JSON (partials on the wire, states in a table). ``tests/windows/test_aggregate.py``
runs the same contract checks over every implementation (like river's ``checks``).
"""

from __future__ import annotations

from typing import Any, Protocol, Self


class Mergeable(Protocol):
    """Combines with another of its kind and round-trips through JSON."""

    def merge(self, other: Self) -> None: ...

    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self: ...


class WindowAggregate(Mergeable, Protocol):
    """What one series or entity holds for one window: how many spans it counted, how many
    arrived late, and the closed window's record (:meth:`result`)."""

    late: int

    @property
    def count(self) -> int: ...

    def result(self, size_s: float) -> dict[str, Any]: ...
