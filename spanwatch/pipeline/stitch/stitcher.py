"""Stitching stage: chunked-payload pieces in, whole (or partial) payloads out, bounded memory.

The owner of a pieces partition keeps each open payload's :class:`~pipeline.stitch.chunks.
PayloadState` in ``meta`` (payload id -> state, or a tombstone once finished) and each piece's
data in ``data`` (``<payload id>#<index>`` -> base64), both durable stores co-partitioned with
the pieces topic (the worker's tables), so a successor loses nothing. A payload finishes
once: complete (every piece, digest checked), or partial when it times out, when the bytes
held pass ``max_bytes`` (oldest first) or when it cannot be decoded. A tombstone lives one
timeout long, so a retried piece of a finished payload is not a new payload.

Besides the stores, the stage keeps an index of the payloads it holds (size, first seen,
partition) to find the oldest and the total quickly; it is rebuilt from ``meta`` after every
rebalance (:meth:`StitchStage.reload`), so payloads taken over mid-way time out and are
evicted like the ones that started here.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Collection, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from ..common.clock import WallClock
from ..common.settings import Duration, SettingsModel
from .chunks import Payload, PayloadState, Piece, assemble


@dataclass
class StitchStage:
    """Reassembles payloads per pieces partition (module docs)."""

    meta: MutableMapping[Any, Any]
    data: MutableMapping[Any, Any]
    timeout_ns: int
    max_bytes: int
    wall_ns: WallClock = time.time_ns
    counters: Counter[str] = field(default_factory=Counter)
    # payload id -> (bytes held, first seen, partition): the open payloads of this worker
    held: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    bytes_held: int = 0  # running sum of the held sizes: checked on every piece
    partitions: Collection[int] | None = None  # pieces partitions owned (None: all)
    loaded: bool = False

    def assigned(self, partitions: Collection[int] | None) -> None:
        """A rebalance: the index is rebuilt from ``meta`` at the next event (the stores are
        being restored meanwhile)."""
        self.partitions = partitions
        self.loaded = False

    def reload(self) -> None:
        """Hold exactly the open payloads of the owned partitions, as ``meta`` has them."""
        self.held.clear()
        self.bytes_held = 0
        for pid, raw in list(self.meta.items()):
            if not isinstance(raw, dict) or raw.get("done"):
                continue
            part = int(raw.get("partition", -1))
            if self.partitions is not None and part not in self.partitions:
                continue
            st = PayloadState.from_dict(raw)
            self._hold(pid, st.bytes_held, st.first_seen_ns, part)
        self.loaded = True

    def add_piece(self, part: int, piece: Piece) -> list[Payload]:
        """Store a piece; returns the payloads it finished (its own, once complete, and the
        oldest ones evicted to keep under ``max_bytes``)."""
        self._ensure_loaded()
        raw = self.meta.get(piece.payload_id)
        if raw is not None and raw.get("done"):
            self.counters["pieces_after_done"] += 1  # a retry of a finished payload
            return []
        state = PayloadState.from_dict(raw) if raw else PayloadState.start(piece, self.wall_ns())
        outcome = state.add(piece)
        self.counters[f"pieces_{outcome}"] += 1
        if outcome == "new":
            self.data[f"{piece.payload_id}#{piece.index}"] = base64.b64encode(piece.data).decode()
        if state.complete:
            return [self._finish(state, None, part)]
        self.meta[piece.payload_id] = {**state.to_dict(), "partition": part}
        self._hold(piece.payload_id, state.bytes_held, state.first_seen_ns, part)
        return self.tick(part) if self.bytes_held > self.max_bytes else []

    def tick(self, part: int) -> list[Payload]:
        """Time out the partition's payloads open for ``timeout_ns``, forget its old
        tombstones, evict while over ``max_bytes``; returns the payloads finished."""
        self._ensure_loaded()
        now = self.wall_ns()
        done = []
        for pid, (_, first, p) in sorted(self.held.items(), key=lambda kv: kv[1][1]):
            if p == part and now - first >= self.timeout_ns:
                raw = self.meta.get(pid)
                if raw is not None:
                    done.append(self._finish(PayloadState.from_dict(raw), "timeout", part))
        for pid, raw in list(self.meta.items()):  # tombstones live one timeout long
            if (
                isinstance(raw, dict)
                and raw.get("done")
                and raw.get("partition") == part
                and now - raw["at"] >= self.timeout_ns
            ):
                del self.meta[pid]
        return done + self._evict(part)

    def _evict(self, part: int) -> list[Payload]:
        """Finish the partition's oldest payloads while the bytes held pass the cap."""
        done = []
        while self.bytes_held > self.max_bytes:
            mine = [kv for kv in self.held.items() if kv[1][2] == part]
            if not mine:
                break
            pid = min(mine, key=lambda kv: kv[1][1])[0]
            raw = self.meta.get(pid)
            if raw is None:
                self._release(pid)
                continue
            done.append(self._finish(PayloadState.from_dict(raw), "evicted", part))
        return done

    def _finish(self, state: PayloadState, reason: str | None, part: int) -> Payload:
        pid = state.payload_id
        pieces = {
            int(i): base64.b64decode(v)
            for i in state.received
            if (v := self.data.get(f"{pid}#{i}")) is not None
        }
        payload = assemble(state, pieces, reason)
        for i in state.received:
            self.data.pop(f"{pid}#{i}", None)
        self.meta[pid] = {"done": True, "at": self.wall_ns(), "partition": part}
        self._release(pid)
        self.counters[f"payloads_{payload.status}"] += 1
        if payload.reason:
            self.counters[f"partial_{payload.reason}"] += 1
        return payload

    def _ensure_loaded(self) -> None:
        if not self.loaded:
            self.reload()

    def _hold(self, pid: str, size: int, first_ns: int, partition: int) -> None:
        self._release(pid)
        self.held[pid] = (size, first_ns, partition)
        self.bytes_held += size

    def _release(self, pid: str) -> None:
        old = self.held.pop(pid, None)
        if old is not None:
            self.bytes_held -= old[0]


class StitchSettings(SettingsModel):
    """Reassembly of chunked payloads (docs/CHUNKING.md)."""

    enabled: bool = True
    timeout: Duration = "2m"  # an incomplete payload is emitted as partial after this
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024)  # per worker, incomplete payloads
    forward_content: bool = False  # put the text in spanwatch.payloads (privacy: off)
    max_content_bytes: int = Field(900_000, ge=1)  # broker limits: longer text is cut
    tick_interval_s: float = Field(1.0, gt=0)
