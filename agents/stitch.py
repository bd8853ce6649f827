"""Stitch agent: chunked-payload pieces -> whole payloads, with bounded memory.

* ``spanwatch.pieces``: pieces re-keyed by payload id (so a payload's pieces meet in one
  partition whatever the collector keyed by), plus ``tick`` messages to every partition.
* tables ``payload-meta`` (payload id -> :class:`~pipeline.chunks.PayloadState`) and
  ``payload-pieces`` (``<payload id>#<index>`` -> piece data), co-partitioned with
  ``spanwatch.pieces``: a restart loses nothing.
* ``spanwatch.payloads``: one record per payload, once: complete (digest checked) or partial
  (``timeout``, ``evicted``, ``digest_mismatch``, ``undecodable``) with the missing ranges.

faust only lets an agent write a table while it processes an event of the table's partition,
so timeouts and evictions run when a tick for that partition arrives.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from agents.control import broadcast, dispatch
from agents.ingest import SpanSink
from pipeline.chunks import Payload, PayloadState, Piece, assemble
from pipeline.config import Settings
from pipeline.deadletter import SourceRef
from pipeline.ingest import IngestResult
from pipeline.windows import parse_duration_ns

log = logging.getLogger("spanwatch.stitch")


@dataclass
class StitchRuntime:
    counters: Counter[str] = field(default_factory=Counter)
    # payload id -> (bytes held, first seen, partition): this worker's incomplete payloads
    held: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    bytes_held: int = 0  # running sum of held sizes: checked on every piece
    loaded: bool = False
    partitions: set[int] | None = None  # assigned partitions of the pieces topic (None: all)

    def hold(self, pid: str, size: int, first_ns: int, partition: int) -> None:
        self.release(pid)
        self.held[pid] = (size, first_ns, partition)
        self.bytes_held += size

    def release(self, pid: str) -> None:
        old = self.held.pop(pid, None)
        if old is not None:
            self.bytes_held -= old[0]

    def reload(self, entries: Iterable[tuple[str, Any]]) -> None:
        """Hold exactly the incomplete payloads of the assigned partitions, from the table
        (restored from its changelog): payloads taken over mid-way are timed out and evicted
        like the ones that started here; those of partitions gone elsewhere are not ours."""
        self.held.clear()
        self.bytes_held = 0
        for pid, raw in entries:
            if not isinstance(raw, dict) or raw.get("done"):
                continue
            part = int(raw.get("partition", -1))
            if self.partitions is not None and part not in self.partitions:
                continue
            st = PayloadState.from_dict(raw)
            self.hold(pid, st.bytes_held, st.first_seen_ns, part)
        self.loaded = True


def register(
    app: faust.App,
    settings: Settings,
    on_payload: Callable[[Payload], Awaitable[None]] | None = None,
) -> tuple[SpanSink, StitchRuntime]:
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
    timeout_ns = parse_duration_ns(ss.timeout)
    rt = StitchRuntime()

    async def sink(where: SourceRef, result: IngestResult) -> None:
        for reason in result.bad_pieces:
            rt.counters[f"bad_{reason}"] += 1
        sent = [
            await pieces.send(key=p.payload_id.encode(), value=orjson.dumps(p.to_dict()))
            for p in result.pieces
        ]
        for fut in sent:  # delivered before the source message can be committed
            await fut

    @app.timer(interval=ss.tick_interval_s)
    async def tick() -> None:
        await broadcast(pieces, b"__tick__", orjson.dumps({"type": "tick"}), topics.partitions)

    async def finish(state: PayloadState, reason: str | None, part: int) -> None:
        held = {
            int(i): base64.b64decode(v)
            for i in state.received
            if (v := data.get(f"{state.payload_id}#{i}")) is not None
        }
        payload: Payload = assemble(state, held, reason)
        for i in state.received:
            data.pop(f"{state.payload_id}#{i}", None)
        # A tombstone, so that a retried piece arriving after the end is not a new payload
        meta[state.payload_id] = {"done": True, "at": time.time_ns(), "partition": part}
        rt.release(state.payload_id)
        rt.counters[f"payloads_{payload.status}"] += 1
        if payload.reason:
            rt.counters[f"partial_{payload.reason}"] += 1
        if on_payload is not None:
            try:
                await on_payload(payload)
            except Exception:
                rt.counters["payload_hook_errors"] += 1
                log.exception("payload hook failed on %s", state.payload_id)
        if payloads_out is not None:
            rec = payload.record(ss.forward_content, ss.max_content_bytes)
            await payloads_out.send(key=state.payload_id.encode(), value=orjson.dumps(rec))

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, *, signal: Any, **kwargs: Any) -> None:
        # the table is being restored now: reload what this worker holds at the next event
        rt.partitions = {tp.partition for tp in assigned if tp.topic == topics.pieces}
        rt.loaded = False

    def load_held() -> None:
        if not rt.loaded:
            rt.reload(list(meta.items()))

    async def evict_and_expire(part: int) -> None:
        now = time.time_ns()
        for pid, (_, first, p) in sorted(rt.held.items(), key=lambda kv: kv[1][1]):
            if p == part and now - first >= timeout_ns:
                raw = meta.get(pid)
                if raw is not None:
                    await finish(PayloadState.from_dict(raw), "timeout", part)
        for pid, raw in list(meta.items()):  # tombstones live one timeout long
            if (
                isinstance(raw, dict)
                and raw.get("done")
                and raw.get("partition") == part
                and now - raw["at"] >= timeout_ns
            ):
                del meta[pid]
        while rt.bytes_held > ss.max_bytes:
            mine = sorted(
                (kv for kv in rt.held.items() if kv[1][2] == part), key=lambda kv: kv[1][1]
            )
            if not mine:
                break
            raw = meta.get(mine[0][0])
            if raw is None:
                rt.release(mine[0][0])
                continue
            await finish(PayloadState.from_dict(raw), "evicted", part)

    async def add_piece(part: int, piece: Piece) -> None:
        raw = meta.get(piece.payload_id)
        if raw is not None and raw.get("done"):
            rt.counters["pieces_after_done"] += 1  # a retry of a finished payload
            return
        state = PayloadState.from_dict(raw) if raw else PayloadState.start(piece, time.time_ns())
        outcome = state.add(piece)
        rt.counters[f"pieces_{outcome}"] += 1
        if outcome == "new":
            data[f"{piece.payload_id}#{piece.index}"] = base64.b64encode(piece.data).decode()
        if state.complete:
            await finish(state, None, part)
            return
        meta[piece.payload_id] = {**state.to_dict(), "partition": part}
        rt.hold(piece.payload_id, state.bytes_held, state.first_seen_ns, part)
        if rt.bytes_held > ss.max_bytes:
            await evict_and_expire(part)

    async def handle(m: Any, d: dict[str, Any]) -> None:
        part = m.partition
        load_held()
        if d.get("type") == "tick":
            await evict_and_expire(part)
        else:
            await add_piece(part, Piece.from_dict(d))

    def stitch_error() -> None:
        rt.counters["stitch_errors"] += 1

    @app.agent(pieces, name="spanwatch.stitch")
    async def stitch(stream: faust.StreamT[bytes]) -> None:
        await dispatch(stream, handle, stitch_error, log, "stitch")

    return sink, rt
