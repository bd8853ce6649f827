"""Ingest agent: the collector's topic -> normalized records (``spanwatch.spans``) + dead letters.

One faust event per Kafka message; a message holds a whole export batch, decoded and normalized
by one call to :func:`pipeline.ingest.message.ingest_message`. Every event is handled inside its own
try/except: faust acks an event even when the agent raises, so an escaped exception would be
silent data loss.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust

from spanwatch.pipeline.common.errors import describe_error
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.ingest.deadletter import DeadLetter, SourceRef
from spanwatch.pipeline.ingest.message import (
    IngestResult,
    IngestStats,
    headers_dict,
    ingest_message,
)
from spanwatch.transport.firehose import Firehose

from .control import log_failure
from .topics import DeadLetterSender, SpanSender, source_topic, spans_sender

log = logging.getLogger("spanwatch.ingest")
SpanSink = Callable[[SourceRef, IngestResult], Awaitable[None]]


class IngestHandler:
    """One collector message through ingest: decoded and normalized, its dead letters sent,
    its records published (when this side publishes them) and handed to every sink. Never
    raises: a failure is one log line and a counter, and the message is handled."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        sinks: Sequence[SpanSink],
        publish: SpanSender | None,
    ) -> None:
        self.sinks = list(sinks)
        self.publish = publish
        self.send_dead_letter = DeadLetterSender(
            app, settings.topics.deadletter, settings.ingest.deadletter_max_bytes
        )
        self.options = settings.ingest.options(
            settings.normalize.options(),
            # prompt text for the safety checks and for prompt clusters (read while in memory)
            collect_content=settings.safety.enabled or settings.clusters.enabled,
        )
        self.stats = IngestStats()

    async def __call__(
        self,
        where: SourceRef,
        value: bytes | None,
        headers: Any,
        key: bytes | None,
        broker_ns: int,
    ) -> None:
        """``headers``: as the reader's client gives them (:func:`headers_dict`)."""
        stats = self.stats
        try:
            result = ingest_message(
                value,
                headers=headers_dict(headers),
                source=where,
                key=key,
                options=self.options,
                wall_ns=time.time_ns(),
                broker_ns=broker_ns,
            )
        except Exception as exc:  # a bug, not bad input: one line, the message kept
            detail = describe_error(exc)
            log.error("ingest failed at %s: %s", where, detail)
            result = IngestResult(
                dead_letters=[DeadLetter("agent_error", detail, value or b"", where, key=key)]
            )
        stats.add(result)
        for dl in result.dead_letters:
            await self.send_dead_letter(dl)
        stats.deadletter_send_errors = self.send_dead_letter.errors
        if self.publish is not None and result.spans:
            try:
                await self.publish(result.spans)
            except Exception as exc:
                stats.sink_errors += 1
                log.error("records of %s not published: %s", where, describe_error(exc))
        for sink in self.sinks:
            try:
                await sink(where, result)
            except Exception as exc:
                stats.sink_errors += 1
                log_failure(log, exc, "stage failed on %s", where)


def register(
    app: faust.App,
    settings: Settings,
    sinks: Sequence[SpanSink] = (),
    *,
    publish_spans: bool = True,
    firehose: Firehose | None = None,
) -> IngestStats:
    """Declare the ingest topics and agent on ``app``; returns the live counters.

    ``sinks`` receive every message's records in-process (golden signals, ...). With
    ``publish_spans`` off, a sink publishes the records: the window agents send them with
    their batch of source messages (:mod:`agents.windows`). With a ``firehose``
    (``ingest.reader: batch``) it reads the source topic in batches and hands each message
    to the same handler; no faust agent reads it.
    """
    topics = settings.topics
    publish = spans_sender(app, topics.spans) if publish_spans else None
    handle = IngestHandler(app, settings, sinks, publish)
    stats = handle.stats

    if firehose is not None:
        firehose.handle = handle
        early = getattr(app, "on_app_start", None)  # transport.app.SpanwatchApp
        if early is not None:
            early.append(firehose.join)
        app.task(firehose.run)
    else:
        source = source_topic(app, topics.source)

        @app.agent(source, name="spanwatch.ingest")
        async def ingest(stream: faust.StreamT[bytes]) -> None:
            async for event in stream.events():
                msg = event.message
                await handle(
                    SourceRef(msg.topic, msg.partition, msg.offset),
                    event.value,
                    msg.headers,
                    msg.key,
                    int((msg.timestamp or 0) * 1e9),
                )

    @app.timer(interval=settings.worker.stats_interval_s)
    async def report() -> None:
        log.info(
            "ingest: %d messages, %d spans seen, %d records, %d skipped (not LLM), "
            "%d rejected, dead letters %s",
            stats.messages,
            stats.spans_seen,
            stats.records,
            stats.skipped_non_llm,
            stats.rejected_spans,
            dict(stats.deadletters) or "{}",
        )

    return stats
