"""The windows as two drivers, one per side: events in, commands out.

**The ingest side** (:class:`WindowsIngest`).

The window agents (``agents/windows.py``) feeds :class:`WindowsIngest` what faust delivers
(a normalized source message, an assignment, a timer tick) and carries out the commands it
returns (:class:`SendBatch`, :class:`Announce`); every decision is made here, with an
injected clock, so unit tests drive it with no broker:

* **batching**: each message's partials go to the :class:`~pipeline.windows.coalesce.Coalescer`,
  which says when a source partition's batch is sent, and whether the commit of what was
  sent before must be confirmed first (its rule 1);
* **after a batch is with the broker** (:meth:`WindowsIngest.sent`): the partition's
  watermark moves to the batch's newest span end, never before, so a heartbeat never
  announces a watermark ahead of its partials; its source offsets may then commit
  (:meth:`WindowsIngest.done`);
* **cold partitions**: a source partition assigned since its last message here joins again
  the traces its previous owner had joined (:meth:`WindowsIngest.needs_rejoin`,
  :meth:`WindowsIngest.rejoin_messages`), before its first message is added;
* **freezes**: a gap longer than the group session between two runs of the event loop (the
  liveness tick awaits nothing) or between heartbeats means this worker was frozen or
  starved: its partitions may be elsewhere, so batches go one message at a time for a while
  and the next heartbeat announces nothing;
* **heartbeats** (:meth:`WindowsIngest.heartbeat`): the batches held long enough, then the
  watermark of every assigned source partition, advanced by the wall clock when idle (never
  while it has a backlog, never during a rebalance).

**The merge side** (:class:`WindowsMerge`). The merge agent feeds it each message of the
partials topic as decoded (a bundle, a single partial or a watermark heartbeat) and carries
out what it returns (:class:`MergeCommands`): the golden-signal windows to show to the
window hooks, the records to send (closed windows, top consumers, black holes), and, when
the partition's state is due to be saved, the table writes after which the message's offset
may commit. The merge itself is :class:`~pipeline.windows.merge.MergeStage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..common.clock import Timer
from ..ingest.spans import LlmSpan
from .coalesce import Batch, Coalescer
from .merge import MergeStage, WindowOutput
from .partial import Partial
from .preaggregate import PreAggregator
from .spec import PartitionClock
from .state import ClosedWindow


@dataclass(frozen=True)
class SendBatch:
    """Send ``batch`` (its partials, one bundle per owner partition, and its records): first
    ask :meth:`WindowsIngest.confirm_first` whether a commit must be confirmed before it;
    then report :meth:`WindowsIngest.sent` and, sent or not, :meth:`WindowsIngest.done`.
    Commands are carried out one after the other, in order."""

    batch: Batch
    epoch: int


@dataclass(frozen=True)
class Announce:
    """Broadcast the watermark ``wm`` of source partition ``src`` to every partials partition."""

    src: int
    wm: int


@dataclass
class WindowsIngest:
    """The ingest side of the windows of one worker (module docs)."""

    preagg: PreAggregator
    coalescer: Coalescer
    session_s: float  # the group's session timeout: a longer gap is a freeze
    clock: Timer = time.monotonic
    cold: set[int] = field(default_factory=set)  # assigned since their last message here
    held: set[int] = field(default_factory=set)  # source partitions assigned now
    alive_at: float = 0.0  # when the event loop last ran the liveness tick
    beat_at: float = 0.0  # when the last heartbeat ran

    def __post_init__(self) -> None:
        self.alive_at = self.beat_at = self.clock()

    # --- events ---------------------------------------------------------------------------
    def needs_rejoin(self, partition: int) -> bool:
        """Whether ``partition``'s first message here comes before its traces are joined
        again (then :meth:`rejoin_messages` it with what was read back before this message)."""
        if partition not in self.cold:
            return False
        self.cold.discard(partition)
        return True

    def rejoin_messages(
        self,
        partition: int,
        messages: Sequence[tuple[int, bytes]],
        cut: bool,
        wait_ns: int,
        spans_of: Callable[[bytes, int], Sequence[LlmSpan]],
    ) -> tuple[int, bool]:
        """Join again the traces a previous owner of ``partition`` had joined, from the
        messages read back before this worker's first offset there (``(broker timestamp ns,
        value)``, oldest first; ``spans_of(value, timestamp)`` decodes one). Messages more
        than ``wait_ns`` (``metrics.trace_wait``) older than the newest are skipped: their
        traces were forgotten anyway, so a read cut short among them cut nothing. Returns how
        many messages were joined, and whether the read was cut short of traces that count."""
        newest = messages[-1][0] if messages else 0
        joined = 0
        for ts_ns, value in messages:
            if newest - ts_ns > wait_ns:
                cut = False
                continue
            self.preagg.rejoin(partition, spans_of(value, ts_ns))
            joined += 1
        return joined, cut

    def message(
        self,
        partition: int,
        offset: int,
        spans: Sequence[LlmSpan],
        extra: Callable[[PartitionClock], Sequence[Partial]] | None = None,
    ) -> tuple[list[SendBatch], Exception | None]:
        """One source message: its partials (and ``extra(clock)`` ones: prompt samples, judged
        late by the partition's clock as its spans were) join its partition's batch with its
        records. Returns the batches to send now, in order, and the error that stopped the
        message, if one did: a message that fails here still moves the batching on with what
        it made (in a coalesced batch, the spans added before the failure), and its batches
        must still go out (then the caller counts the error)."""
        if self.clock() - self.alive_at > self.session_s:
            self.coalescer.suspect()  # frozen past the session (see liveness)
        # a batch the message would overflow goes first; a coalesced one takes the
        # message's spans in place (PreAggregator.add_message ``into``)
        batches, into = self.coalescer.open(partition, len(spans))
        made: list[Partial] = []
        error: Exception | None = None
        try:
            made = self.preagg.add_message(
                partition, offset, spans, defer_watermark=True, into=into
            )
            if into is not None:
                made = []  # they are in the batch already
            if extra is not None:
                made += extra(self.preagg.clock(partition))
        except Exception as exc:
            error = exc
        newest = self.preagg.deferred(partition)
        batches += self.coalescer.add(partition, offset, made, len(spans), newest, spans)
        return [self._send(b) for b in batches], error

    def confirm_first(self, cmd: SendBatch) -> int | None:
        """The source offset to commit, and see confirmed, before ``cmd``'s batch is sent
        (coalesce rule 1: too much sent and not committed yet); None: send it now. Asked
        right before sending: what was sent just before counts."""
        batch = cmd.batch
        if self.coalescer.needs_confirm(batch):
            return self.coalescer.last_sent[batch.partition] + 1
        return None

    def sent(self, cmd: SendBatch) -> None:
        """The batch is with the broker: its partition's watermark may move now."""
        self.coalescer.sent(cmd.batch, cmd.epoch)
        self.preagg.observe(cmd.batch.partition, cmd.batch.newest)

    def confirmed(self, partition: int) -> None:
        """The broker confirmed the commit a :class:`SendBatch` asked for first."""
        self.coalescer.confirmed(partition)

    def done(self, cmd: SendBatch) -> int:
        """The batch was handled, sent or not (a failure is counted by the caller): nothing
        of it is a backlog here any more. Returns the source offset that may commit."""
        self.preagg.mark_processed(cmd.batch.partition, cmd.batch.last)
        return cmd.batch.last + 1

    def assigned(self, partitions: Sequence[int]) -> None:
        """A rebalance ended and ``partitions`` of the source topic are this worker's. What
        the coalescer held is read again from the committed offsets; partitions gone
        elsewhere are forgotten; those new here join their traces again; and the pause
        restarts every idle timer (a pause is not idleness) and the liveness clock."""
        mine = list(partitions)
        self.coalescer.assigned()
        self.alive_at = self.clock()  # a slow start or restore before this is no freeze
        self.preagg.forget([p for p in self.preagg.clocks if p not in mine])
        self.preagg.touch(mine)
        if self.preagg.trees is not None:
            self.preagg.trees.forget(mine)
        self.cold.intersection_update(mine)
        self.cold.update(p for p in mine if p not in self.held)
        self.held = set(mine)

    def liveness(self) -> None:
        """A tick that awaits nothing: a gap between two is the event loop's own (a freeze,
        not a slow broker), and batches go one message at a time for a while."""
        now = self.clock()
        if now - self.alive_at > self.session_s:
            self.coalescer.suspect()
        self.alive_at = now

    def heartbeat(self, rebalancing: bool, assigned: Sequence[int]) -> bool:
        """A heartbeat tick: whether it goes on (:meth:`due`, then :meth:`announcements`).
        Not while a rebalance pauses the partitions, and not right after a freeze: the group
        has likely moved them, and their idle timers restart instead."""
        now, last = self.clock(), self.beat_at
        self.beat_at = now
        if rebalancing:
            return False
        if now - last > self.session_s:
            self.preagg.touch(sorted(assigned))
            return False
        return True

    def due(self) -> list[SendBatch]:
        """The batches held for the coalescing interval, with no message since to send them."""
        return [self._send(b) for p in self.coalescer.due() for b in self.coalescer.take(p)]

    def announcements(
        self, assigned: Sequence[int], ends: Mapping[int, tuple[int | None, int | None]]
    ) -> list[Announce]:
        """The watermark of each assigned source partition, after the due batches were sent
        (``ends``: partition -> (end offset, committed offset): a backlog is not idleness)."""
        backlog = self.preagg.backlog(ends)
        marks = self.preagg.watermarks(sorted(assigned), backlog)
        return [Announce(src, wm) for src, wm in marks.items()]

    def _send(self, batch: Batch) -> SendBatch:
        return SendBatch(batch, self.coalescer.epoch)


MERGE_COUNTERS = (
    "partials_duplicate_total",
    "partials_overlap_total",
    "activity_overflow_total",
    "activity_expired_total",
)


@dataclass(frozen=True)
class Emit:
    """A record to send: ``kind`` names the output (``metrics``, ``tokens``, ``engine``,
    ``clusters``, ``labels``: :meth:`~pipeline.windows.merge.WindowOutput.record`)."""

    kind: str
    key: bytes
    record: dict[str, Any]


@dataclass
class MergeCommands:
    """What the merge agent does for one partials message, in this order."""

    # closed golden-signal windows and their records: the window hooks see them before
    # they are sent (once a window is out, so are its Prometheus series)
    windows: list[tuple[ClosedWindow, dict[str, Any]]] = field(default_factory=list)
    emits: list[Emit] = field(default_factory=list)
    # the black-hole records among ``emits``, each worth a log line
    black_holes: list[dict[str, Any]] = field(default_factory=list)
    # table writes (key, value; None deletes) that save the partition; once written, the
    # message's offset may commit. None: not due yet, nothing may commit
    save: list[tuple[Any, Any]] | None = None


@dataclass
class WindowsMerge:
    """The merge side's decisions (module docs); ``stage`` holds the state."""

    stage: MergeStage
    out: WindowOutput
    windows_closed: int = 0
    black_holes: int = 0

    def message(self, partition: int, offset: int, value: dict[str, Any]) -> MergeCommands:
        """One decoded message of the partials topic at ``partition``/``offset``."""
        cmds = MergeCommands()
        stage, kind = self.stage, value.get("type")
        if kind == "wm":
            closed = stage.apply_watermark(
                partition, int(value["src"]), int(value["wm"]), int(value["n_src"])
            )
            self._close(partition, closed, cmds)
        else:
            made = (
                map(Partial.from_dict, value["partials"])
                if kind == "bundle"
                else [Partial.from_dict(value)]
            )
            for sid, event in stage.apply_bundle(partition, made):
                record = self.out.black_hole(sid, event)
                cmds.black_holes.append(record)
                cmds.emits.append(Emit("tokens", sid.encode(), record))
            self.black_holes += len(cmds.black_holes)
        if stage.flush_due(partition):
            cmds.save = stage.flush(partition, offset)
        return cmds

    def _close(self, partition: int, closed: list[ClosedWindow], cmds: MergeCommands) -> None:
        token_records = []  # at-least-once: a replay re-emits the same windows
        for c in closed:
            kind, record = self.out.record(c)
            if kind == "metrics":
                cmds.windows.append((c, record))
            elif kind == "tokens":
                token_records.append(record)
            cmds.emits.append(Emit(kind, c.series.encode(), record))
        self.windows_closed += len(closed)
        for top in self.out.top(partition, token_records):
            cmds.emits.append(Emit("tokens", b"top", top))

    def counters(self) -> dict[str, int]:
        """The merge's counters for the worker's metrics."""
        stage = self.stage
        return {k: stage.counters[k] for k in MERGE_COUNTERS} | {
            "series_held": sum(stage.held(p) for p in stage.partitions),
            "windows_closed_total": self.windows_closed,
            "black_holes_total": self.black_holes,
        }
