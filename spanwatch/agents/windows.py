"""The windows' ingest side: each source message's partial windows out to their owners.

Golden signals (series = service/layer/operation/model) and token accounting (entities =
model, service, user, session; traces for black holes only) share one mechanism:

* here, ``spanwatch.partials``: per batch of source messages (:mod:`pipeline.windows.coalesce`),
  one bundle per owner partition holding the partials of the series and entities that
  partition owns (``crc32(id) % partitions``), plus watermark heartbeats of every assigned
  source partition, sent to every partition. The decisions (batching, confirmed commits,
  freezes, heartbeats) are :class:`~pipeline.windows.driver.WindowsIngest`'s;
* then the merge agent (:mod:`agents.merge`) merges them per series and closes windows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from faust.types import TP

from spanwatch.pipeline.clusters.prompts import load_featurizer
from spanwatch.pipeline.common.durations import parse_duration_ns
from spanwatch.pipeline.config import Settings, preaggregator
from spanwatch.pipeline.ingest.deadletter import SourceRef
from spanwatch.pipeline.ingest.message import IngestResult, ingest_message
from spanwatch.pipeline.windows.coalesce import Coalescer
from spanwatch.pipeline.windows.driver import SendBatch, WindowsIngest
from spanwatch.pipeline.windows.partial import Partial, bundles
from spanwatch.pipeline.windows.preaggregate import (
    PreAggregator,
    prompt_partials,
)
from spanwatch.pipeline.windows.state import ClosedWindow
from spanwatch.transport.source import FaustSource, SourceSide

from .control import broadcast, log_failure
from .ingest import SpanSink, spans_sender

log = logging.getLogger("spanwatch.windows")


class NotConfirmed(RuntimeError):
    """The broker did not confirm a commit that must come before more partials are sent
    (pipeline.windows.coalesce, rule 1): a rebalance is under way, and the messages are read
    again."""


ENGINE_COUNTERS = ("engine_samples_total", "engine_dead_letters_total", "engine_errors_total")


@dataclass
class MetricsRuntime:
    """What the window agents share with the worker (counters, the Prometheus stores)."""

    preagg: PreAggregator
    # called with every closed golden-signal window and its record, as it is sent
    # (Prometheus: spanwatch.runtime.prom.LatestWindows and WindowTotals); a failing hook is counted
    on_window_closed: list[Callable[[ClosedWindow, dict[str, Any]], None]] = field(
        default_factory=list
    )
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "partials_sent_total": 0,
            "source_batches_total": 0,
            "source_messages_coalesced_total": 0,
            "source_commit_unconfirmed_total": 0,
            "partials_send_errors_total": 0,
            "partials_duplicate_total": 0,
            "partials_overlap_total": 0,
            "windows_closed_total": 0,
            "late_spans_total": 0,
            "series_overflow_total": 0,
            "merge_errors_total": 0,
            "black_holes_total": 0,
            "activity_overflow_total": 0,
            "activity_expired_total": 0,
            "changelog_stale_total": 0,
            "window_hook_errors_total": 0,
            "trace_rejoined_messages_total": 0,
            "trace_rejoin_truncated_total": 0,
            "trace_rejoin_errors_total": 0,
        }
    )
    # model / service token and cost totals for Prometheus (never per user: cardinality)
    token_totals: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # sends partials to their owners and returns once the broker has them (set by register)
    send_partials: Callable[[list[Partial]], Awaitable[None]] | None = None
    cost_totals: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    call_totals: Counter[tuple[str, str]] = field(default_factory=Counter)


# (topic, partition, end offset, at most this many messages, at most this many bytes) ->
# ((broker timestamp ns, value) of the messages just before ``end``, oldest first; whether
# older messages were left unread)
PartitionReader = Callable[[str, int, int, int, int], tuple[list[tuple[int, bytes]], bool]]


def partials_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    """``spanwatch.partials``: bundles and heartbeats, keyed and partitioned by owner."""
    return app.topic(
        settings.topics.partials,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topics.partitions,
    )


def register(
    app: faust.App,
    settings: Settings,
    source_partitions: int,
    read_back: PartitionReader | None = None,
    source: SourceSide | None = None,
) -> tuple[SpanSink, MetricsRuntime]:
    """Declare the window topics, table, agent and timer; return the ingest-side sink.
    ``source`` reads the source topic (faust's consumer by default, or the firehose) and
    lets the windows hold its commits back. ``read_back`` reads a source partition's
    messages before a worker's first offset, to join again the traces a previous owner had
    joined (None: traces split across a change of owner are joined only from their later
    parts)."""
    topics, ms = settings.topics, settings.metrics
    src = source if source is not None else FaustSource(app, topics.source)
    partials = partials_topic(app, settings)
    # the normalized records go out with their batch (the ingest agent leaves them to this sink)
    publish_spans = spans_sender(app, topics.spans)
    cs = settings.clusters
    featurize = load_featurizer(cs.featurizer) if cs.enabled else None
    rt = MetricsRuntime(preaggregator(settings, time.time_ns))
    keyer = rt.preagg.keyer

    async def send_partials(made: list[Partial], records: list[Any] | None = None) -> None:
        """One bundle per owner partition, and ``records`` to ``spanwatch.spans``; returns
        once the broker has every one."""
        sent = [
            await partials.send(key=b"bundle", value=value, partition=part)
            for part, value in bundles(made, topics.partitions).items()
        ]
        if records and publish_spans is not None:
            sent += await publish_spans(records)
        for fut in sent:
            await fut

    # the ingest side's decisions (batching, freezes, heartbeats, cold partitions) are the
    # driver's (pipeline/windows/driver.py); this agent carries out its commands
    session_s = float(app.conf.broker_session_timeout)
    driver = WindowsIngest(
        rt.preagg,
        Coalescer(
            ms.coalesce_interval_s, max_weight=ms.coalesce_max_spans, resume_after_s=2 * session_s
        ),
        session_s,
    )

    async def send_batch(cmd: SendBatch) -> None:
        """Send a source partition's batch (after a confirmed commit when the driver asks for
        one); then its watermark may move, and its source offsets up to the batch commit
        (never before the broker has every partial)."""
        batch = cmd.batch
        tp = TP(topics.source, batch.partition)
        up_to = driver.confirm_first(cmd)  # pipeline.windows.coalesce, rule 1
        if up_to is not None:
            if not await src.commit_now(tp, up_to):
                rt.counters["source_commit_unconfirmed_total"] += 1
                raise NotConfirmed(f"commit of {tp} up to {up_to - 1}")
            driver.confirmed(batch.partition)
        try:
            await send_partials(batch.partials, batch.records)
            driver.sent(cmd)
            rt.counters["partials_sent_total"] += len(batch.partials)
            rt.counters["source_batches_total"] += 1
            rt.counters["source_messages_coalesced_total"] += batch.messages
        finally:  # handled, even if it failed (counted by the caller): no backlog left here
            src.allow_commit(tp, driver.done(cmd))

    rejoin_options = settings.ingest.options(settings.normalize.options(), collect_content=False)
    trace_wait_ns = parse_duration_ns(ms.trace_wait)

    async def rejoin(part: int, first: int) -> None:
        """Join the traces of ``part`` that its previous owner had joined: the messages before
        this worker's first offset there, back to ``metrics.trace_rejoin_messages`` (and
        bytes) within ``metrics.trace_wait``. Counted; a bound that cut traces is counted too."""
        if read_back is None or first <= 0 or not ms.trace_rejoin_messages:
            return
        loop = asyncio.get_running_loop()
        args = (topics.source, part, first, ms.trace_rejoin_messages, ms.trace_rejoin_bytes)
        try:
            messages, cut = await loop.run_in_executor(None, read_back, *args)
        except Exception as exc:
            rt.counters["trace_rejoin_errors_total"] += 1
            log_failure(log, exc, "traces of source partition %d not joined again", part)
            return
        newest = messages[-1][0] if messages else 0
        for ts_ns, value in messages:
            if newest - ts_ns > trace_wait_ns:
                cut = False  # what is older was forgotten after trace_wait anyway
                continue
            result = ingest_message(
                value, options=rejoin_options, wall_ns=time.time_ns(), broker_ns=ts_ns
            )
            driver.rejoin(part, result.spans)
            rt.counters["trace_rejoined_messages_total"] += 1
        if cut:
            rt.counters["trace_rejoin_truncated_total"] += 1
            log.info(
                "source partition %d: traces joined again from the %d messages before offset "
                "%d; their older parts are not (metrics.trace_rejoin_messages, _bytes)",
                part,
                len(messages),
                first,
            )

    async def sink(where: SourceRef, result: IngestResult) -> None:
        # Partials of consecutive messages go out together (pipeline.windows.coalesce). faust
        # acks the source message when this returns, but the consumer commits a source offset
        # only once the broker has every partial up to it; and the watermark moves only then,
        # so a heartbeat never announces it ahead of its partials.
        part, offset = where.partition, where.offset
        if driver.needs_rejoin(part):
            await rejoin(part, offset)
        prompts = None
        if featurize is not None and result.contents:
            contents, fz = result.contents, featurize

            def prompts() -> list[Partial]:
                return prompt_partials(part, offset, result.spans, contents, cs, fz)

        sends, error = driver.message(part, offset, result.spans, prompts)
        for cmd in sends:  # a message that failed here still moves the commit on
            await send_batch(cmd)
        if error is not None:
            raise error
        rt.counters["late_spans_total"] = rt.preagg.late_spans
        rt.counters["series_overflow_total"] = keyer.overflowed
        if (trees := rt.preagg.trees) is not None:
            rt.counters["trace_spans_held"] = trees.spans_held
            rt.counters["trace_spans_unjoined_total"] = trees.dropped_spans
            rt.counters["traces_evicted_total"] = trees.evicted_traces

    def on_assigned(assigned: list[Any]) -> None:
        # A rebalance pauses consumption: restart the idle timer of every source partition
        # this worker (still or newly) owns, so the pause never reads as an idle partition.
        driver.assigned([tp.partition for tp in assigned])
        src.limit_commits(assigned)

    src.on_assigned(on_assigned)

    @app.timer(interval=0.5)
    async def liveness() -> None:
        driver.liveness()  # awaits nothing: a gap between two runs is the loop's own

    @app.timer(interval=ms.heartbeat_interval_s)
    async def heartbeat() -> None:
        if src.rebalancing:  # paused partitions are not idle: announce nothing meanwhile
            driver.heartbeat(True, ())
            return
        source_tps = src.assignment()
        assigned = [tp.partition for tp in source_tps]
        if not driver.heartbeat(False, assigned):  # frozen: announce nothing now
            return
        for cmd in driver.due():  # held long enough, with no message since to send it
            part = cmd.batch.partition
            try:
                await send_batch(cmd)
            except NotConfirmed as exc:  # a rebalance: the batch's messages are read again
                log.info("batch of source partition %d not sent: %s", part, exc)
            except Exception as exc:  # never stop the timer
                rt.counters["partials_send_errors_total"] += 1
                log_failure(log, exc, "batch of source partition %d not sent", part)
        for a in driver.announcements(assigned, src.ends(source_tps)):
            beat = orjson.dumps(
                {"type": "wm", "src": a.src, "wm": a.wm, "n_src": source_partitions}
            )
            await broadcast(partials, b"__wm__", beat, topics.partitions)

    rt.send_partials = send_partials  # the engine and labels agents send theirs with it
    return sink, rt
