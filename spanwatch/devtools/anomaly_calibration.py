"""What a threshold means on real series: how many points score at least 0.9 outside every
labelled window, per series, and how many anomaly events that makes (``bench anomaly``).

A score is calibrated when a threshold means the same on every series: at 0.9, about one
normal point in 30,000 is that extreme. Labelled windows (NAB's standard profile, as the
window score uses them) are where scoring high is right; outside them every point at or
above the threshold is a false alarm a user would see. An *event* is a run of consecutive
points at or above the threshold: a user sees one anomaly from its start to its end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spanwatch.devtools import window_score as ws
from spanwatch.devtools.public_series import Case


@dataclass(frozen=True)
class Calibration:
    series: str
    points: int  # scored, after probation
    outside: int  # of them outside every labelled window
    high_outside: int  # outside, at or above the threshold
    events_outside: int  # runs of such points

    @property
    def share(self) -> float:
        return self.high_outside / self.outside if self.outside else 0.0


def calibration(
    name: str, scores: Sequence[float], labels: Sequence[int], threshold: float = 0.9
) -> Calibration:
    n = len(scores)
    wins = ws.windows(n, ws.events_from_labels(labels))
    inside = [False] * n
    for a, b in wins:
        for i in range(max(a, 0), min(b + 1, n)):
            inside[i] = True
    start = ws.probation(n)
    outside = high = events = 0
    prev = False
    for i in range(start, n):
        hit = scores[i] >= threshold
        if not inside[i]:
            outside += 1
            if hit:
                high += 1
                if not prev:
                    events += 1
        prev = hit
    return Calibration(name, n - start, outside, high, events)


def report(
    set_name: str,
    rows: Sequence[Calibration],
    print_: Callable[[str], None] = print,
    threshold: float = 0.9,
) -> None:
    outside = sum(r.outside for r in rows)
    high = sum(r.high_outside for r in rows)
    events = sum(r.events_outside for r in rows)
    worst = sorted(rows, key=lambda r: r.share, reverse=True)[:3]
    over = sum(r.share > 0.001 for r in rows)
    print_(
        f"{set_name}: points >= {threshold} outside labelled windows: {high:,} of {outside:,} "
        f"({high / max(outside, 1):.3%}) in {events:,} events; series above 0.1%: {over} of "
        f"{len(rows)}; worst: " + ", ".join(f"{r.series} {r.share:.2%}" for r in worst)
    )


def case_calibration(
    cases: Sequence[Case], scores: Sequence[Sequence[float]], threshold: float = 0.9
) -> list[Calibration]:
    return [calibration(c.name, s, c.labels, threshold) for c, s in zip(cases, scores, strict=True)]
