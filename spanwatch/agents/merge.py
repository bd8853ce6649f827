"""Merge agent: partials -> per-series state (table ``series``) -> closed windows out.

Reads ``spanwatch.partials`` (bundles and watermark heartbeats from every worker's ingest
side, :mod:`agents.windows`), co-partitioned with the table ``series`` (changelog
``<app_id>-series-changelog``). Every decision is the driver's
(:class:`~pipeline.windows.driver.WindowsMerge`); this agent carries out its commands:
window hooks, sends to ``spanwatch.metrics`` / ``spanwatch.tokens`` / the side outputs,
and table writes, after which the partials offset may commit.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson

from spanwatch.pipeline.config import Settings, merge_stage
from spanwatch.pipeline.windows.driver import WindowsMerge
from spanwatch.pipeline.windows.merge import WindowOutput
from spanwatch.pipeline.windows.runtime import MetricsRuntime
from spanwatch.transport.consumer import no_loss_consumer

from .control import dispatch, log_failure
from .tables import versioned_table
from .topics import partials_topic

log = logging.getLogger("spanwatch.merge")


def register(app: faust.App, settings: Settings, rt: MetricsRuntime) -> None:
    """Declare the merge agent, its table and output topics; counters go to ``rt``."""
    topics = settings.topics
    partials = partials_topic(app, settings)
    outputs = {  # by the kind WindowOutput.record names
        "metrics": topics.metrics,
        "tokens": topics.tokens,
        "engine": topics.engine,
        "clusters": topics.clusters,
        "labels": topics.labels,
    }
    send_to = {
        k: app.topic(n, key_serializer="raw", value_serializer="raw") for k, n in outputs.items()
    }
    # versioned by the spanwatch.partials offset that wrote each state (agents/tables.py)
    table = versioned_table(app, "series", default=None, partitions=topics.partitions)
    stage = merge_stage(table, settings)
    merge = WindowsMerge(
        stage,
        WindowOutput(
            rt.preagg.keyer,
            smallest=settings.metrics.window_settings().smallest.name,
            top_n=settings.tokens.top_n,
            token_totals=rt.token_totals,
            cost_totals=rt.cost_totals,
            call_totals=rt.call_totals,
        ),
    )

    async def handle(m: Any, value: dict[str, Any]) -> None:
        cmds = merge.message(m.partition, m.offset, value)
        for closed, record in cmds.windows:  # before the sends: once out, so are they
            for hook in rt.on_window_closed:
                try:
                    hook(closed, record)
                except Exception as exc:
                    rt.counters["window_hook_errors_total"] += 1
                    log_failure(log, exc, "window hook %r failed", hook)
        for e in cmds.emits:  # at-least-once: a replay re-emits the same records
            await send_to[e.kind].send(key=e.key, value=orjson.dumps(e.record))
        for r in cmds.black_holes:
            log.warning(
                "token black hole: %s %s crossed %s (%s > %s)",
                r["entity"]["kind"],
                r["entity"]["id"],
                r["budget"],
                r["value"],
                r["limit"],
            )
        if cmds.save is not None:  # save what changed, then let the offset commit
            for key, saved in cmds.save:
                if saved is not None:
                    table[key] = saved
                elif key in table:
                    del table[key]
            no_loss_consumer(app).allow_commit(m.tp, m.offset + 1)
        rt.counters.update(merge.counters())
        rt.counters["changelog_stale_total"] = table.stale_records

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode types it as sync
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        stage.reset()  # what was not saved is applied again from the partials topic

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode types it as sync
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        stage.reset()  # the table may hold a newer state than memory (a thawed zombie)
        no_loss_consumer(app).limit_commits(tp for tp in assigned if tp.topic == topics.partials)

    def merge_error() -> None:
        rt.counters["merge_errors_total"] += 1

    @app.agent(partials, name="spanwatch.merge")
    async def merge_partials(stream: faust.StreamT[bytes]) -> None:
        await dispatch(stream, handle, merge_error, log, "merge")
