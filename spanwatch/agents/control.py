"""Shared plumbing of the stateful agents: control messages broadcast to every partition
(watermarks, ticks) and a per-event dispatch that never lets one bad event stop a stream.

faust only lets an agent write a table while it processes an event of that table's
partition, so periodic work reaches each partition as a control message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from spanwatch.pipeline.common.errors import describe_error, describe_traceback
from spanwatch.pipeline.ingest.deadletter import SourceRef

Handler = Callable[[Any, Any], Awaitable[None]]  # (faust message, decoded JSON value)


def log_failure(log: logging.Logger, exc: BaseException, what: str, *args: Any) -> None:
    """One line for a failure on an event (``what % args``, then the exception's type and its
    message with quoted input masked); the code's frames at DEBUG. Never the input itself:
    an exception message may quote a prompt, a phone number or a key."""
    line = what % args if args else what
    log.error("%s: %s", line, describe_error(exc))
    log.debug("%s:\n%s", line, describe_traceback(exc))


async def broadcast(topic: faust.TopicT, key: bytes, value: bytes, partitions: int) -> None:
    """Send the same control message to every partition of ``topic``."""
    for part in range(partitions):
        await topic.send(key=key, value=value, partition=part)


async def dispatch(
    stream: faust.StreamT[bytes],
    handle: Handler,
    on_error: Callable[[], None],
    log: logging.Logger,
    what: str,
) -> None:
    """Decode each JSON event and hand it to ``handle(message, value)`` (the faust message:
    topic, partition, key); an exception is counted (``on_error``) and logged with
    ``topic[partition]@offset``, and the stream goes on."""
    async for event in stream.events():
        m = event.message
        try:
            await handle(m, orjson.loads(event.value))
        except Exception as exc:
            on_error()
            where = SourceRef(m.topic, m.partition, m.offset)
            log_failure(log, exc, "%s failed at %s", what, where)
