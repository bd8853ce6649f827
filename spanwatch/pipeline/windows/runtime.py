"""What the window agents share with the worker: their counters, the hooks on closed windows
(Prometheus), the token and cost totals, and how partials reach their owners.

Pure: the agents fill it, the worker's Prometheus collector reads it
(``spanwatch.runtime.prom``), and the engine and labels agents send their partials with
:attr:`MetricsRuntime.send_partials`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .partial import Partial
from .preaggregate import PreAggregator
from .state import ClosedWindow

# (topic, partition, end offset, at most this many messages, at most this many bytes) ->
# ((broker timestamp ns, value) of the messages just before ``end``, oldest first; whether
# older messages were left unread). The worker's is spanwatch.runtime.kafka.partition_reader.
PartitionReader = Callable[[str, int, int, int, int], tuple[list[tuple[int, bytes]], bool]]

COUNTERS = (
    "partials_sent_total",
    "source_batches_total",
    "source_messages_coalesced_total",
    "source_commit_unconfirmed_total",
    "partials_send_errors_total",
    "partials_duplicate_total",
    "partials_overlap_total",
    "windows_closed_total",
    "late_spans_total",
    "series_overflow_total",
    "merge_errors_total",
    "black_holes_total",
    "activity_overflow_total",
    "activity_expired_total",
    "changelog_stale_total",
    "window_hook_errors_total",
    "trace_rejoined_messages_total",
    "trace_rejoin_truncated_total",
    "trace_rejoin_errors_total",
)


@dataclass
class MetricsRuntime:
    """What the window agents share with the worker (counters, the Prometheus stores)."""

    preagg: PreAggregator
    # called with every closed golden-signal window and its record, as it is sent
    # (Prometheus: spanwatch.runtime.prom.LatestWindows and WindowTotals); a failing hook is counted
    on_window_closed: list[Callable[[ClosedWindow, dict[str, Any]], None]] = field(
        default_factory=list
    )
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    # model / service token and cost totals for Prometheus (never per user: cardinality)
    token_totals: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # sends partials to their owners and returns once the broker has them (set by the agent)
    send_partials: Callable[[list[Partial]], Awaitable[None]] | None = None
    cost_totals: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    call_totals: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count_ingest_side(self) -> None:
        """Copy the ingest side's own counts (pre-aggregation, trace joins) into ``counters``."""
        preagg, counters = self.preagg, self.counters
        counters["late_spans_total"] = preagg.late_spans
        counters["series_overflow_total"] = preagg.keyer.overflowed
        if (trees := preagg.trees) is not None:
            counters["trace_spans_held"] = trees.spans_held
            counters["trace_spans_unjoined_total"] = trees.dropped_spans
            counters["traces_evicted_total"] = trees.evicted_traces
