"""The ``anomaly`` configuration section: which window, which signals with which detector."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ..common.errors import ConfigError
from ..common.settings import SettingsModel
from .base import AnomalyScorer
from .defaults import DEFAULT_DETECTORS, SIGNALS
from .stream import AnomalyStage


class AnomalySettings(SettingsModel):
    """Online anomaly detection on closed windows (docs/ANOMALY.md)."""

    enabled: bool = True
    window: str | None = None  # window shape scored; default "1m" if configured, else first
    signals: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_DETECTORS.items()}
    )
    entity_kinds: tuple[Literal["model", "service", "user", "session"], ...] = (
        "model",
        "service",
    )  # token windows scored (users/sessions: many series)
    max_series: int = Field(20_000, ge=1)  # (series, signal) detectors per worker
    emit_scores: bool = True  # every score to spanwatch.anomalies (not only start/end)

    @field_validator("signals")
    @classmethod
    def _signals(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(v) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signals {unknown}; known: {sorted(SIGNALS)}")
        for name, spec in v.items():
            try:
                AnomalyScorer.from_spec(spec)
            except ConfigError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return v

    def stage(self, windows: tuple[str, ...] = ("1m",)) -> AnomalyStage:
        """``windows``: ``metrics.windows``, to pick the default window."""
        window = self.window or ("1m" if "1m" in windows else windows[0])
        return AnomalyStage(dict(self.signals), window, tuple(self.entity_kinds), self.emit_scores)
