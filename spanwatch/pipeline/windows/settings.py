"""``metrics:``: the windows' configuration section (shapes, lateness, dimensions, caps)."""

from __future__ import annotations

from pydantic import Field, field_validator

from ..common.clock import WallClock
from ..common.durations import parse_duration_ns
from ..common.settings import Duration, SettingsModel
from ..ingest.tracetree import TraceTrees
from .golden import ALLOWED_DIMENSIONS, DEFAULT_DIMENSIONS, MAX_SERIES
from .spec import WindowSettings, WindowSpec


class MetricsSettings(SettingsModel):
    """Golden-signal windows (see docs/ARCHITECTURE.md, "Golden signals")."""

    enabled: bool = True
    windows: tuple[str, ...] = ("10s", "1m", "5m")  # "SIZE" tumbling or "SIZE/STEP" hopping
    allowed_lateness: Duration = "5s"
    idle_timeout: Duration = "30s"  # an idle partition's watermark follows the wall clock
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
    max_series: int = Field(MAX_SERIES, ge=1)  # per worker; beyond it an overflow series
    heartbeat_interval_s: float = Field(1.0, gt=0)
    # the merge keeps series state in memory and saves what changed to its table this often;
    # a successor re-applies the partials of at most this much time (docs/ARCHITECTURE.md)
    state_flush_interval: Duration = "1s"
    # the ingest side sends the partials of a source partition's messages of this many seconds
    # as one partial per series (0: each message on its own; pipeline/windows/coalesce.py)
    coalesce_interval_s: float = Field(0.5, ge=0)
    # spans per batch, and spans sent but not committed per source partition; after each
    # assignment a partition's first this-many spans go one message at a time
    coalesce_max_spans: int = Field(5_000, ge=1)
    # a trace split over messages is joined (agent depth, self time) while its parts come
    # within trace_wait of each other; at most max_trace_spans spans are held per worker
    trace_wait: Duration = "10m"
    max_trace_spans: int = Field(200_000, ge=0)
    # a worker taking a source partition over joins again what the previous owner had joined:
    # it reads back up to this many messages (and bytes) before its first offset, within
    # trace_wait; traces older than that are joined only from their later parts (counted)
    trace_rejoin_messages: int = Field(1_000, ge=0)
    trace_rejoin_bytes: int = Field(64 * 1024 * 1024, ge=0)
    prometheus_port: int = Field(9464, ge=0, le=65535)  # 0 disables /metrics
    prometheus_bind: str = "0.0.0.0"

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one window")
        for w in v:
            WindowSpec.parse(w)
        if len(set(v)) != len(v):
            raise ValueError("duplicate window")
        return v

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [d for d in v if d not in ALLOWED_DIMENSIONS]
        if bad:
            raise ValueError(f"unknown dimensions {bad}; allowed: {list(ALLOWED_DIMENSIONS)}")
        return v

    def trace_trees(self, wall_ns: WallClock) -> TraceTrees:
        return TraceTrees(wall_ns, parse_duration_ns(self.trace_wait), self.max_trace_spans)

    def window_settings(self) -> WindowSettings:
        return WindowSettings(
            specs=tuple(WindowSpec.parse(w) for w in self.windows),
            allowed_lateness_ns=parse_duration_ns(self.allowed_lateness),
            idle_timeout_ns=parse_duration_ns(self.idle_timeout),
        )
