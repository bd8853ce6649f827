"""Stitch agent: chunked-payload pieces -> whole payloads, with bounded memory.

* ``spanwatch.pieces``: pieces re-keyed by payload id (so a payload's pieces meet in one
  partition whatever the collector keyed by), plus ``tick`` messages to every partition.
* tables ``payload-meta`` (payload id -> :class:`~pipeline.stitch.chunks.PayloadState`) and
  ``payload-pieces`` (``<payload id>#<index>`` -> piece data), co-partitioned with
  ``spanwatch.pieces``: a restart loses nothing.
* ``spanwatch.payloads``: one record per payload, once: complete (digest checked) or partial
  (``timeout``, ``evicted``, ``digest_mismatch``, ``undecodable``) with the missing ranges.

The reassembly, its limits and its index of held payloads are :class:`pipeline.stitch.
StitchStage`. faust only lets an agent write a table while it processes an event of the
table's partition, so timeouts and evictions run when a tick for that partition arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from spanwatch.pipeline.common.durations import parse_duration_ns
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.ingest.deadletter import SourceRef
from spanwatch.pipeline.ingest.message import IngestResult
from spanwatch.pipeline.stitch.chunks import Payload, Piece
from spanwatch.pipeline.stitch.stitcher import StitchStage

from .control import broadcast, dispatch, log_failure
from .ingest import SpanSink

log = logging.getLogger("spanwatch.stitch")


def register(
    app: faust.App,
    settings: Settings,
    on_payload: Callable[[Payload], Awaitable[None]] | None = None,
) -> tuple[SpanSink, StitchStage]:
    """``on_payload`` sees every finished payload with its text (the safety stage)."""
    topics, ss = settings.topics, settings.stitch
    pieces = app.topic(
        topics.pieces,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=topics.partitions,
    )
    payloads_out = (
        app.topic(topics.payloads, key_serializer="raw", value_serializer="raw")
        if topics.payloads
        else None
    )
    meta = app.Table("payload-meta", default=None, partitions=topics.partitions)
    data = app.Table("payload-pieces", default=None, partitions=topics.partitions)
    stage = StitchStage(meta, data, parse_duration_ns(ss.timeout), ss.max_bytes)

    async def sink(where: SourceRef, result: IngestResult) -> None:
        for reason in result.bad_pieces:
            stage.counters[f"bad_{reason}"] += 1
        sent = [
            await pieces.send(key=p.payload_id.encode(), value=orjson.dumps(p.to_dict()))
            for p in result.pieces
        ]
        for fut in sent:  # delivered before the source message can be committed
            await fut

    @app.timer(interval=ss.tick_interval_s)
    async def tick() -> None:
        await broadcast(pieces, b"__tick__", orjson.dumps({"type": "tick"}), topics.partitions)

    async def emit(payload: Payload) -> None:
        if on_payload is not None:
            try:
                await on_payload(payload)
            except Exception as exc:
                stage.counters["payload_hook_errors"] += 1
                log_failure(log, exc, "payload hook failed on %s", payload.state.payload_id)
        if payloads_out is not None:
            rec = payload.record(ss.forward_content, ss.max_content_bytes)
            await payloads_out.send(key=payload.state.payload_id.encode(), value=orjson.dumps(rec))

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, *, signal: Any, **kwargs: Any) -> None:
        # the tables are being restored now: the stage reloads what it holds at the next event
        stage.assigned({tp.partition for tp in assigned if tp.topic == topics.pieces})

    async def handle(m: Any, d: dict[str, Any]) -> None:
        if d.get("type") == "tick":
            finished = stage.tick(m.partition)
        else:
            finished = stage.add_piece(m.partition, Piece.from_dict(d))
        for payload in finished:
            await emit(payload)

    def stitch_error() -> None:
        stage.counters["stitch_errors"] += 1

    @app.agent(pieces, name="spanwatch.stitch")
    async def stitch(stream: faust.StreamT[bytes]) -> None:
        await dispatch(stream, handle, stitch_error, log, "stitch")

    return sink, stage
