"""Window-based scoring of anomaly detections, early detection rewarded, false alarms costed.

The scoring rules follow the published description of the Numenta Anomaly Benchmark's
"standard profile" (Lavin & Ahmad, 2015); this is an independent implementation:

* every labelled event gets a window of ``10 % of the series / number of events`` points,
  starting half a window before the event (an early warning counts) and lasting at least
  until the event ends; overlapping windows merge;
* the first ``min(15 %, 750)`` points are a probation period: detections there are ignored;
* the first detection inside a window scores ``A_TP * sigma(y)``, ``y`` in ``[-1, 0]`` from
  the window's start to its end (so earlier is better), and later detections in the same
  window count nothing; a window with no detection costs ``A_FN``;
* a detection outside every window costs ``A_FP * sigma(y)`` with ``y`` its distance after the
  preceding window in window lengths (a late alarm right after an incident costs less than a
  random one), or the full ``A_FP`` before the first window;
* ``sigma(y) = 2 / (1 + e^(5y)) - 1``; the corpus score is normalized to 0 (no detections at
  all) .. 100 (every window caught at its very start, no false alarm).

A detection is every point whose score reaches the threshold, as in NAB: a detector that
stays above the threshold for an hour outside an incident pays for every point of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

A_TP, A_FP, A_FN = 1.0, 0.11, 1.0  # NAB's standard application profile


def sigma(y: float) -> float:
    return -1.0 if y > 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def events_from_labels(labels: Sequence[int], merge_gap: int = 3) -> list[tuple[int, int]]:
    """Point labels -> ``[(first, last)]`` runs of 1s; runs at most ``merge_gap`` apart merge."""
    runs: list[tuple[int, int]] = []
    for i, flag in enumerate(labels):
        if not flag:
            continue
        if runs and i - runs[-1][1] <= merge_gap + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def windows(n: int, events: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Scoring windows ``[(start, end)]`` (inclusive) for ``events`` in a series of ``n``."""
    if not events:
        return []
    width = max(math.ceil(0.1 * n / len(events)), 1)
    out: list[tuple[int, int]] = []
    for first, last in sorted(events):
        start = max(first - width // 2, 0)
        end = min(max(first + (width - width // 2) - 1, last), n - 1)
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def probation(n: int) -> int:
    return min(math.floor(0.15 * n), 750)


@dataclass
class SeriesScore:
    raw: float
    null: float  # score of a detector that never fires
    perfect: float  # every window caught at its first point
    tp: int
    fn: int
    fp: int


def score_series(
    detections: Sequence[bool], wins: Sequence[tuple[int, int]], probation_points: int | None = None
) -> SeriesScore:
    n = len(detections)
    skip = probation(n) if probation_points is None else probation_points
    raw, tp, fp = 0.0, 0, 0
    caught = [False] * len(wins)
    w = 0  # index of the first window that does not end before i
    for i in range(skip, n):
        while w < len(wins) and wins[w][1] < i:
            w += 1
        if not detections[i]:
            continue
        if w < len(wins) and wins[w][0] <= i:
            if not caught[w]:
                start, end = wins[w]
                raw += A_TP * sigma((i - end) / max(end - start, 1))
                caught[w] = True
                tp += 1
            continue
        fp += 1
        if w > 0:
            start, end = wins[w - 1]
            raw += A_FP * sigma((i - end) / max(end - start, 1))
        else:
            raw -= A_FP
    fn = caught.count(False)
    raw -= A_FN * fn
    perfect = sum(A_TP * sigma(-1.0) for _ in wins)
    return SeriesScore(raw, -A_FN * len(wins), perfect, tp, fn, fp)


def normalized(scores: Sequence[SeriesScore]) -> float:
    """0 = never fire, 100 = perfect; negative when false alarms cost more than the hits."""
    raw = sum(s.raw for s in scores)
    null = sum(s.null for s in scores)
    perfect = sum(s.perfect for s in scores)
    return 100.0 * (raw - null) / (perfect - null) if perfect > null else 0.0
