"""The topics more than one agent reads or writes, declared once, with their senders.

* the collector's source topic (:func:`source_topic`: raw bytes, tombstones allowed);
* ``spanwatch.partials`` (:func:`partials_topic`, :func:`partials_sender`): bundles and
  watermark heartbeats, keyed and partitioned by owner;
* ``spanwatch.spans`` (:func:`spans_sender`): the normalized records;
* ``spanwatch.deadletter`` (:class:`DeadLetterSender`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import faust

from spanwatch.pipeline.common.errors import describe_error
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.ingest.deadletter import DeadLetter
from spanwatch.pipeline.ingest.message import records_to_messages
from spanwatch.pipeline.ingest.spans import LlmSpan
from spanwatch.pipeline.windows.partial import Partial, bundles

log = logging.getLogger("spanwatch.ingest")

SpanSender = Callable[[list[LlmSpan]], Awaitable[list[Awaitable[Any]]]]


class PartialsSender(Protocol):
    def __call__(
        self, made: list[Partial], records: list[LlmSpan] | None = None
    ) -> Awaitable[None]: ...


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


def spans_sender(app: faust.App, name: str) -> SpanSender | None:
    """Sends normalized records to topic ``name`` (``spanwatch.spans``, at most 200 per
    message) and returns the sends' futures; None when publishing is off (``name`` "")."""
    if not name:
        return None
    topic = app.topic(name, key_serializer="raw", value_serializer="raw")

    async def send(records: list[LlmSpan]) -> list[Awaitable[Any]]:
        return [await topic.send(value=value) for value in records_to_messages(records)]

    return send


def partials_sender(app: faust.App, settings: Settings, partials: faust.TopicT) -> PartialsSender:
    """Sends partials to ``partials`` (:func:`partials_topic`), one bundle per owner
    partition, and records to ``spanwatch.spans`` (when given and published); returns once the
    broker has every one."""
    topics = settings.topics
    publish_spans = spans_sender(app, topics.spans)

    async def send(made: list[Partial], records: list[LlmSpan] | None = None) -> None:
        sent = [
            await partials.send(key=b"bundle", value=value, partition=part)
            for part, value in bundles(made, topics.partitions).items()
        ]
        if records and publish_spans is not None:
            sent += await publish_spans(records)
        for fut in sent:
            await fut

    return send


class DeadLetterSender:
    """Logs a dead letter in one line (reason and where, never its bytes) and sends it, cut
    to ``max_bytes``, to topic ``name``. Never raises: a send that fails (a broker error, a
    value the producer refuses) is retried once without the value, then counted."""

    def __init__(self, app: faust.App, name: str, max_bytes: int) -> None:
        self.topic = app.topic(name, key_serializer="raw", value_serializer="raw")
        self.max_bytes = max_bytes
        self.errors = 0  # dead letters that could not be sent at all

    async def __call__(self, dl: DeadLetter) -> None:
        log.warning("dead letter %s from %s: %s", dl.reason, dl.source, dl.detail)
        bounded = dl.bounded(self.max_bytes)
        for attempt in (bounded, bounded.without_value()):
            try:
                await self.topic.send(
                    key=attempt.key, value=attempt.value, headers=attempt.headers()
                )
                return
            except Exception as exc:
                log.warning(
                    "dead letter %s from %s not sent (%d bytes): %s",
                    dl.reason,
                    dl.source,
                    len(attempt.value),
                    describe_error(exc),
                )
        self.errors += 1
