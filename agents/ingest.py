"""Ingest agent: the collector's topic -> normalized records (``spanwatch.spans``) + dead letters.

One faust event per Kafka message; a message holds a whole export batch, decoded and normalized
by one call to :func:`pipeline.ingest.ingest_message`. Every event is handled inside its own
try/except: faust acks an event even when the agent raises, so an escaped exception would be
silent data loss.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import faust

from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.deadletter import DeadLetter, SourceRef
from spanwatch.pipeline.ingest import (
    IngestOptions,
    IngestResult,
    IngestStats,
    ingest_message,
    records_to_messages,
)
from spanwatch.pipeline.spans import LlmSpan

log = logging.getLogger("spanwatch.ingest")
SpanSink = Callable[[SourceRef, IngestResult], Awaitable[None]]


def headers_dict(raw: Any) -> dict[str, bytes]:
    """faust gives headers as a list of pairs or a mapping; spanwatch wants a dict."""
    if not raw:
        return {}
    items = raw.items() if isinstance(raw, Mapping) else raw
    return {str(k): (v if isinstance(v, bytes) else str(v).encode()) for k, v in items}


def source_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic the collector writes: raw bytes in, tombstones (empty values) allowed."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )


def dead_letter_sender(app: faust.App, name: str) -> Callable[[DeadLetter], Awaitable[None]]:
    """Logs a dead letter (reason and where, never its bytes) and sends it to topic ``name``."""
    topic = app.topic(name, key_serializer="raw", value_serializer="raw")

    async def send(dl: DeadLetter) -> None:
        log.warning("dead letter %s from %s: %s", dl.reason, dl.source, dl.detail)
        await topic.send(key=dl.key, value=dl.value, headers=dl.headers())

    return send


SpanSender = Callable[[list[LlmSpan]], Awaitable[list[Awaitable[Any]]]]


def spans_sender(app: faust.App, name: str) -> SpanSender | None:
    """Sends normalized records to topic ``name`` (``spanwatch.spans``, at most 200 per
    message) and returns the sends' futures; None when publishing is off (``name`` "")."""
    if not name:
        return None
    topic = app.topic(name, key_serializer="raw", value_serializer="raw")

    async def send(records: list[LlmSpan]) -> list[Awaitable[Any]]:
        return [await topic.send(value=value) for value in records_to_messages(records)]

    return send


def register(
    app: faust.App,
    settings: Settings,
    sinks: Sequence[SpanSink] = (),
    *,
    publish_spans: bool = True,
) -> IngestStats:
    """Declare the ingest topics and agent on ``app``; returns the live counters.

    ``sinks`` receive every message's records in-process (golden signals, ...). With
    ``publish_spans`` off, a sink publishes the records: the window agents send them with
    their batch of source messages (:mod:`agents.metrics`).
    """
    topics = settings.topics
    source = source_topic(app, topics.source)
    publish = spans_sender(app, topics.spans) if publish_spans else None
    send_dead_letter = dead_letter_sender(app, topics.deadletter)
    options = IngestOptions(
        encoding=settings.ingest.encoding,
        max_message_bytes=settings.ingest.max_message_bytes,
        normalize=settings.normalize.options(),
        # prompt text for the safety checks and for prompt clusters (read while in memory)
        collect_content=settings.safety.enabled or settings.clusters.enabled,
    )
    stats = IngestStats()

    @app.agent(source, name="spanwatch.ingest")
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            where = SourceRef(msg.topic, msg.partition, msg.offset)
            try:
                result = ingest_message(
                    event.value,
                    headers=headers_dict(msg.headers),
                    source=where,
                    key=msg.key,
                    options=options,
                )
            except Exception as exc:
                log.exception("ingest failed at %s", where)
                result = IngestResult(
                    dead_letters=[
                        DeadLetter(
                            "agent_error",
                            f"{type(exc).__name__}: {exc}"[:300],
                            event.value or b"",
                            where,
                            key=msg.key,
                        )
                    ]
                )
            stats.add(result)
            for dl in result.dead_letters:
                await send_dead_letter(dl)
            if publish is not None and result.spans:
                await publish(result.spans)
            for sink in sinks:
                try:
                    await sink(where, result)
                except Exception:
                    stats.sink_errors += 1
                    log.exception("stage failed on %s", where)

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
