"""Which source offsets may be committed: the one rule both readers of a topic follow
(faust's consumer, ``transport/consumer.py``, and the firehose, ``transport/firehose.py``).

A partition under a limit commits nothing until its stage says how far its effect is saved
(:meth:`CommitLimits.allow`), never beyond that, and never at or below what the broker
already confirmed (a commit is not moved back, nor repeated). A partition without a limit
is the reader's own business: with ``guard_unlimited`` off its offsets pass as they are
(faust keeps its own books for the topics no stage limits).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)  # a partition, as the reader names it


@dataclass
class CommitLimits(Generic[K]):
    guard_unlimited: bool = True
    # partition -> the offset below which a stage allows commits (None: nothing yet)
    limits: dict[K, int | None] = field(default_factory=dict)
    confirmed: dict[K, int] = field(default_factory=dict)  # last commit the broker confirmed

    def hold(self, partitions: Iterable[K]) -> None:
        """Commit nothing of these partitions until :meth:`allow` says how far."""
        for p in partitions:
            self.limits.setdefault(p, None)

    def allow(self, partition: K, offset: int) -> None:
        """Offsets below ``offset`` of ``partition`` may commit (their effect is saved)."""
        self.limits[partition] = offset

    def allowed(self, offsets: Mapping[K, int]) -> dict[K, int]:
        """What of ``offsets`` (partition -> next offset) may be committed now."""
        out = {}
        for p, offset in offsets.items():
            limited = p in self.limits
            if limited:
                limit = self.limits[p]
                if limit is None:
                    continue
                offset = min(offset, limit)
            if (limited or self.guard_unlimited) and offset <= self.confirmed.get(p, -1):
                continue  # never move a commit back, nor repeat it
            out[p] = offset
        return out

    def done(self, committed: Mapping[K, int]) -> None:
        """The broker confirmed these commits."""
        self.confirmed.update(committed)

    def forget(self, partition: K) -> None:
        """The partition went to another worker."""
        self.limits.pop(partition, None)
        self.confirmed.pop(partition, None)
