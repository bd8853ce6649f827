"""The ``alerting`` configuration section: rule files and the alert manager's limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from spanwatch.rules import DEFAULT_RULES_DIR

from ..common.settings import Duration, SettingsModel


class AlertingSettings(SettingsModel):
    """Alert rules and notifications (docs/ALERTING.md)."""

    enabled: bool = True
    rules: tuple[Path, ...] = (DEFAULT_RULES_DIR,)  # files or directories of YAML rules
    tick_interval_s: float = Field(1.0, gt=0)  # how often for/keep_firing_for/groups advance
    stale_after: Duration = "5m"  # a series silent this long stops holding a threshold alert
    max_alerts: int = Field(10_000, ge=1)
    max_attempts: int = Field(12, ge=1)  # delivery attempts before a notification is dropped
    delivery_timeout_s: float = Field(30.0, gt=0)
