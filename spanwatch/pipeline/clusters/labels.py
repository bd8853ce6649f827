"""The share of each judge label per application and window (``spanwatch.labels``).

Judges (``safety.judge``, ``safety.judges``: topic, sentiment, hallucination, policy) write one
``gen_ai.evaluation.result``-shaped record per judged call to ``spanwatch.findings``. A judge
answers in its own time, so its results are windowed from that topic, not from the spans: each
evaluation becomes a partial of kind ``labels`` tagged with its findings partition and offset
(idempotent like every partial), counted in the window of the judged call's end time at the
owner of ``(service, evaluation)``, and the window closes ``labels.allowed_lateness`` after its
end. The record says how many calls were judged and each label's share, so a rule can alert
on "more than 30% of the answers of support-agent are negative" (signal
``label_share:negative``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..common.settings import Duration, SettingsModel

MAX_LABELS = 50  # per window: a judge answering free text must not grow a window forever
OTHER = "__other__"


def labels_series_id(service: str, evaluation: str) -> str:
    return orjson.dumps(["@labels", service, evaluation]).decode()


@dataclass
class LabelCounts:
    """Judged calls of one (service, evaluation) in one window, per label (exact integers)."""

    judged: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    late: int = 0

    @property
    def count(self) -> int:
        return self.judged

    def add(self, label: str) -> None:
        self.judged += 1
        self._count(label, 1)

    def _count(self, label: str, n: int) -> None:
        if label not in self.labels and len(self.labels) >= MAX_LABELS:
            label = OTHER
        self.labels[label] = self.labels.get(label, 0) + n

    def merge(self, other: LabelCounts) -> None:
        self.judged += other.judged
        self.late += other.late
        for label, n in sorted(other.labels.items()):
            self._count(label, n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "judged": self.judged,
            "labels": dict(sorted(self.labels.items())),
            "late": self.late,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelCounts:
        return cls(
            int(d["judged"]),
            {str(k): int(v) for k, v in d["labels"].items()},
            int(d.get("late", 0)),
        )

    def result(self, size_s: float) -> dict[str, Any]:
        """The closed ``spanwatch.labels`` window (docs/SCHEMAS.md)."""
        share = {k: v / self.judged for k, v in sorted(self.labels.items())} if self.judged else {}
        return {
            "judged": self.judged,
            "labels": dict(sorted(self.labels.items())),
            "label_share": share,
            "late": self.late,
        }


def evaluation_label(rec: dict[str, Any]) -> tuple[str, str, str, int] | None:
    """(service, evaluation name, label, time of the judged call) of a ``spanwatch.findings``
    judge evaluation; None for anything else (scanner findings, results with no label)."""
    if rec.get("type") != "evaluation":
        return None
    ev = rec.get("evaluation")
    if not isinstance(ev, dict):
        return None
    name, label = ev.get("gen_ai.evaluation.name"), ev.get("gen_ai.evaluation.score.label")
    t = rec.get("time_ns")
    if not isinstance(name, str) or not isinstance(label, str) or not isinstance(t, int) or t <= 0:
        return None
    return str(rec.get("service") or ""), name, label, t


class LabelSettings(SettingsModel):
    """Judge label shares per window (read from ``topics.findings``)."""

    enabled: bool = True
    # judges answer seconds to minutes after the call, behind their sampling queue
    allowed_lateness: Duration = "2m"
