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
from spanwatch.pipeline.windows.partial import Partial
from spanwatch.pipeline.windows.preaggregate import prompt_partials
from spanwatch.pipeline.windows.runtime import MetricsRuntime, PartitionReader
from spanwatch.pipeline.windows.spec import PartitionClock
from spanwatch.transport.source import FaustSource, SourceSide

from .control import broadcast, log_failure
from .ingest import SpanSink
from .topics import partials_sender, partials_topic

log = logging.getLogger("spanwatch.windows")


class NotConfirmed(RuntimeError):
    """The broker did not confirm a commit that must come before more partials are sent
    (pipeline.windows.coalesce, rule 1): a rebalance is under way, and the messages are read
    again."""


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
    send_partials = partials_sender(app, settings, partials)
    cs = settings.clusters
    featurize = load_featurizer(cs.featurizer) if cs.enabled else None
    rt = MetricsRuntime(preaggregator(settings, time.time_ns))

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

    def spans_of(value: bytes, broker_ns: int) -> list[Any]:
        wall_ns = time.time_ns()
        return ingest_message(
            value, options=rejoin_options, wall_ns=wall_ns, broker_ns=broker_ns
        ).spans

    async def rejoin(part: int, first: int) -> None:
        """Join the traces of ``part`` that its previous owner had joined: the messages before
        this worker's first offset there, back to ``metrics.trace_rejoin_messages`` (and
        bytes) within ``metrics.trace_wait``. Counted; a bound that cut traces is counted too."""
        if read_back is None or first <= 0 or not ms.trace_rejoin_messages:
            return
        args = (topics.source, part, first, ms.trace_rejoin_messages, ms.trace_rejoin_bytes)
        try:
            loop = asyncio.get_running_loop()
            messages, cut = await loop.run_in_executor(None, read_back, *args)
        except Exception as exc:
            rt.counters["trace_rejoin_errors_total"] += 1
            log_failure(log, exc, "traces of source partition %d not joined again", part)
            return
        joined, cut = driver.rejoin_messages(part, messages, cut, trace_wait_ns, spans_of)
        rt.counters["trace_rejoined_messages_total"] += joined
        if cut:
            rt.counters["trace_rejoin_truncated_total"] += 1
            log.info(
                "source partition %d: traces joined again from the %d messages before offset "
                "%d; their older parts are not (metrics.trace_rejoin_messages, _bytes)",
                *(part, len(messages), first),
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

            def prompts(clock: PartitionClock) -> list[Partial]:
                return prompt_partials(part, offset, result.spans, contents, cs, fz, clock)

        sends, error = driver.message(part, offset, result.spans, prompts)
        for cmd in sends:  # a message that failed here still moves the commit on
            await send_batch(cmd)
        if error is not None:
            raise error
        rt.count_ingest_side()

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
