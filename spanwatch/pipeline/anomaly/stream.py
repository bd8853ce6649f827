"""Scoring closed windows as they arrive: the anomaly agent's body, broker-free.

Each (series, signal) has an :class:`~pipeline.anomaly.base.AnomalyScorer`, kept by the caller
(a faust table in the worker, a dict in tests and the backtest). A window that was already
scored (at-least-once delivery of ``spanwatch.metrics``) is skipped, so redelivery never
changes what a detector learned.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .base import AnomalyScorer, ScoredPoint
from .defaults import SIGNALS, Signal

NS = 1_000_000_000


def dump_state(scorer: AnomalyScorer) -> str:
    return base64.b64encode(pickle.dumps(scorer, protocol=5)).decode()


def load_state(raw: str) -> AnomalyScorer:
    # Only spanwatch writes this table's changelog topic (restrict it with ACLs).
    obj = pickle.loads(base64.b64decode(raw))
    if not isinstance(obj, AnomalyScorer):
        raise TypeError(f"not a scorer: {type(obj).__name__}")
    return obj


@dataclass
class StageStats:
    scored: int = 0
    anomalies: int = 0
    duplicates: int = 0
    series_overflow: int = 0
    skipped_missing: int = 0
    errors: int = 0  # records the agent could not score (logged with their offset)


@dataclass
class AnomalyStage:
    """``specs``: signal -> detector spec; ``window``: the window name scored. Built by
    :meth:`~pipeline.anomaly.settings.AnomalySettings.stage` (the defaults live there)."""

    specs: dict[str, dict[str, Any]]
    window: str
    entity_kinds: tuple[str, ...]
    emit_scores: bool
    stats: StageStats = field(default_factory=StageStats)

    def points(self, rec: dict[str, Any]) -> list[tuple[Signal, float | None, dict[str, Any]]]:
        """``(signal, value, labels)`` for every watched signal of one record."""
        if rec.get("window", {}).get("name") != self.window:
            return []
        if "series" in rec:
            source, labels = "metrics", rec["series"]
        elif rec.get("type") == "window" and rec.get("entity", {}).get("kind") in self.entity_kinds:
            source, labels = "tokens", rec["entity"]
        else:
            return []
        return [
            (sig, sig.extract(rec), labels)
            for name in self.specs
            if (sig := SIGNALS[name]).source == source
        ]

    def process(
        self,
        key: str,
        rec: dict[str, Any],
        get: Callable[[str], AnomalyScorer | None],
        put: Callable[[str, AnomalyScorer], bool],
    ) -> list[dict[str, Any]]:
        """Score one closed window; returns the ``spanwatch.anomalies`` records.

        ``put`` returns False when the state cannot be kept (series cap): not scored.
        """
        out: list[dict[str, Any]] = []
        points = self.points(rec)
        if not points:
            return out
        end_s = rec["window"]["end_ns"] / NS
        for sig, value, labels in points:
            skey = f"{sig.name}|{key}"
            scorer = get(skey)
            fresh = scorer is None
            if fresh and value is None:  # a series that never has the value keeps no state
                self.stats.skipped_missing += 1
                continue
            if scorer is None:
                scorer = AnomalyScorer.from_spec(self.specs[sig.name])
            if scorer.last_t is not None and end_s <= scorer.last_t:
                self.stats.duplicates += 1
                continue
            was = scorer.streak > 0
            point = scorer.process(value, end_s)
            if not put(skey, scorer):
                if fresh:
                    self.stats.series_overflow += 1
                continue
            if point.value is None:
                self.stats.skipped_missing += 1
                continue
            self.stats.scored += 1
            out.extend(self._records(sig, labels, rec["window"], point, was, scorer))
        return out

    def _records(
        self,
        sig: Signal,
        labels: dict[str, Any],
        window: dict[str, Any],
        p: ScoredPoint,
        was_anomalous: bool,
        scorer: AnomalyScorer,
    ) -> list[dict[str, Any]]:
        base = {
            "signal": sig.name,
            "source": sig.source,
            "labels": labels,
            "window": window,
            "value": p.value,
            "unit": sig.unit,
            "score": round(p.score, 6),
            "expected": None
            if p.expected is None
            else {"low": p.expected[0], "high": p.expected[1]},
            "anomalous": p.anomalous,
            "detector": scorer.detector.name,
            "threshold": scorer.threshold,
        }
        det = scorer.detector
        if det.n_learned < det.grace_period:  # no score yet: say when the first will come
            step_ns = int(window["end_ns"]) - int(window["start_ns"])
            base["learning"] = {
                "seen": det.n_learned,
                "needed": det.grace_period,
                "ready_at_ns": int(window["end_ns"]) + (det.grace_period - det.n_learned) * step_ns,
            }
        out = [{"type": "score", **base}] if self.emit_scores else []
        if p.anomalous and not was_anomalous:
            self.stats.anomalies += 1
            out.append({"type": "anomaly", "state": "start", **base})
        elif was_anomalous and not p.anomalous:
            out.append({"type": "anomaly", "state": "end", **base})
        return out
