"""Health agent glue: feed :class:`pipeline.common.health.HealthTracker` from faust's consumer.

Once a second (a faust timer, so a blocked event loop stops the updates and shows as
unresponsive): every assigned partition's end offset, committed offset and last delivered
offset (faust's consumer and monitor), whether the worker has joined its group and restored
its tables.
"""

from __future__ import annotations

import time
from typing import Any

import faust

from spanwatch.pipeline.common.health import HealthTracker, PartitionState
from spanwatch.transport.firehose import Firehose

INTERVAL_S = 1.0


def stage_topics(app: faust.App) -> dict[str, frozenset[str]]:
    """Each agent and the topics it reads."""
    out = {}
    for agent in app.agents.values():
        topics = getattr(agent.channel, "topics", ())
        out[agent.name] = frozenset(str(t) for t in topics)
    return out


def register(
    app: faust.App, stall_after_s: float, firehose: Firehose | None = None
) -> HealthTracker:
    """``firehose``: the source topic's reader when it is not a faust agent; it reports as
    the stage ``spanwatch.ingest``, as the agent would."""
    tracker = HealthTracker(stages={}, stall_after_s=stall_after_s)

    @app.timer(interval=INTERVAL_S)
    async def observe_health() -> None:
        if not tracker.stages:
            tracker.stages = stage_topics(app)
            if firehose is not None:
                tracker.stages["spanwatch.ingest"] = frozenset({firehose.topic})
        states = partition_states(app)
        if firehose is not None:
            states |= firehose.partition_states()
        tracker.update(
            time.monotonic(),
            states,
            joined=_joined(app),
            recovering=_recovering(app),
        )

    return tracker


def _joined(app: faust.App) -> bool:
    try:
        return bool(app.consumer.assignment()) or not app.rebalancing
    except Exception:  # consumer not started yet
        return False


def _recovering(app: faust.App) -> bool:
    recovery: Any = getattr(app.tables, "recovery", None)
    if recovery is None:
        return bool(app.rebalancing)
    return bool(app.rebalancing) or not recovery.completed.is_set()


def partition_states(app: faust.App) -> dict[tuple[str, int], PartitionState]:
    consumer: Any = app.consumer
    try:
        assigned = consumer.assignment()
    except Exception:
        return {}
    monitor: Any = app.monitor
    ends = monitor.tp_end_offsets
    reads = monitor.tp_read_offsets
    # the consumer's own view: what it resumed from (the broker's committed offsets, read at
    # assignment) and what it committed since; the monitor only sees the latter
    committed = getattr(consumer, "_committed_offset", None) or monitor.tp_committed_offsets
    out = {}
    for tp in assigned:
        if "-changelog" in tp.topic or "__assignor" in tp.topic:
            continue
        # the consumer's end offset is current (every fetch answer moves it); the monitor's is
        # only updated with delivered records and outlives a revocation: a fallback only
        try:
            end = consumer.highwater(tp)
        except Exception:
            end = None
        if end is None:
            end = ends.get(tp)
        out[(tp.topic, tp.partition)] = PartitionState(end, committed.get(tp), reads.get(tp))
    return out
