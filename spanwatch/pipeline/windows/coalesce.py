"""Ingest side: partials of consecutive source messages sent as one partial per series.

A source message becomes a handful of partials per series or token entity it touched
(:meth:`pipeline.windows.preaggregate.PreAggregator.add_message`). Sent one message at a
time, the same few series and entities (a model, a service, a user's sessions) are
serialized, shipped, parsed and merged again and again: the work follows messages, not data. The
:class:`Coalescer` holds a source partition's partials for up to ``interval_s`` (and at most
``max_weight`` spans) and sends one partial per series for the range of source offsets
``first`` .. ``offset``. The messages' other output (the normalized records for
``spanwatch.spans``) goes with the batch, in message order (:attr:`Batch.records`).
A coalesced batch takes each message's spans in place: :meth:`Coalescer.open` hands the
batch's partials to :meth:`~pipeline.windows.preaggregate.PreAggregator.add_message`
(``into``), so no partial is made and merged per message. The result is what
:func:`coalesce` makes of the per-message partials (``tests/windows/test_coalesce.py``);
with one message per trace, that merge was a quarter of the core's time.

Replays stay exact because the owner (:meth:`pipeline.windows.state.SeriesState.admit`) applies a
partial only when its whole range is newer than what it applied, and skips one that is
entirely older. A range that *straddles* what was applied would count some messages twice or
lose others, so no two senders may cut the same messages into different ranges. Two senders
of the same source messages exist only around a change of owner: the new owner re-reads from
the committed offset what the old one may have sent but not committed. Two rules keep them
apart:

1. **A sender never has more than ``max_weight`` spans sent but not committed.** Before a
   batch would take it past that, the agent commits what it sent and waits for the broker to
   confirm (:meth:`Coalescer.needs_confirm`, :meth:`Coalescer.confirmed`). A member the group
   has evicted cannot commit, so it sends nothing more.
2. **After each assignment, a partition's first ``max_weight`` spans go one message at a
   time.** They cover everything the previous owner may have sent and not committed (it read
   the same messages, from the same offset or an earlier one). One-message partials never
   straddle: each is newer or older than what a range applied, as a whole. They are still
   held and sent together (one Kafka message per owner partition, as batches are), each
   partial keeping its own one-message range: what must not be merged is the ranges, not
   the sends. A start, a scale-out and every rebalance begin here, so sending each message
   on its own cost a Kafka message and a faust event per owner partition and source message
   (``spanwatch bench ingest``: the whole of a 20,000-span run went that way).

A third guard needs no broker: a worker whose event loop did not run for longer than the
session (frozen, starved) calls :meth:`Coalescer.suspect` and sends one message at a time
until its next assignment, or ``resume_after_s`` with none (the group kept it: an evicted
member learns so at its next group heartbeat and rejoins).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..common.clock import Timer
from .partial import Partial


@dataclass
class Batch:
    """What to send for a source partition: partials of its messages up to offset ``last``."""

    partition: int
    last: int  # the source offset up to which everything is in ``partials``
    partials: list[Partial]
    messages: int  # source messages it covers
    weight: int  # their spans (+1 per message)
    newest: int = 0  # newest span end in them: the watermark may move there once sent
    # what else the messages produce, in message order (the normalized records for
    # ``spanwatch.spans``): sent with the partials, before the batch's offsets commit
    records: list[Any] = field(default_factory=list)


def coalesce(messages: Iterable[list[Partial]]) -> list[Partial]:
    """One partial per series from the partials of consecutive messages of one source
    partition, oldest first: windows merged, calls kept in message order, the range
    ``first`` .. ``offset`` of the messages that touched the series."""
    out: dict[str, Partial] = {}
    for made in messages:
        for p in made:
            merge_into(out, p)
    return list(out.values())


def merge_into(out: dict[str, Partial], p: Partial) -> None:
    """Merge ``p`` (of a later message of the partition) into ``out``'s partial of its
    series; ``p`` becomes that partial when there is none."""
    into = out.get(p.series)
    if into is None:
        out[p.series] = p
        return
    for wid, agg in p.windows.items():
        mine = into.windows.get(wid)
        if mine is None:
            into.windows[wid] = agg
        else:
            mine.merge(agg)
    into.calls.extend(p.calls)
    into.reach(p.offset)


@dataclass
class _Held:
    since: float
    last: int = -1
    messages: int = 0
    # one-message partials (rule 2), each message's apart, in offset order
    singles: list[list[Partial]] | None = None
    # otherwise one partial per series, the messages' spans added in place
    # (PreAggregator.add_message ``into``) or their partials merged (merge_into)
    series: dict[str, Partial] = field(default_factory=dict)
    partials: int = 0
    weight: int = 0
    newest: int = 0
    records: list[Any] = field(default_factory=list)

    def batch(self, partition: int) -> Batch:
        if self.singles is None:
            made = list(self.series.values())
        elif len(self.singles) == 1:
            made = self.singles[0]
        else:
            made = [p for message in self.singles for p in message]  # in offset order
        n = self.messages
        return Batch(partition, self.last, made, n, self.weight, self.newest, self.records)


@dataclass
class Coalescer:
    """Per source partition, the partials of messages not sent yet (module docs)."""

    interval_s: float  # 0: every message is sent on its own
    max_weight: int = 5_000  # spans per batch, and sent but not committed (module docs)
    max_partials: int = 20_000  # a batch goes out when it holds this many
    resume_after_s: float = 20.0  # a suspicion with no assignment since ends after this
    clock: Timer = time.monotonic
    held: dict[int, _Held] = field(default_factory=dict)
    # partition -> spans seen since the assignment (one message at a time below max_weight)
    seen: dict[int, int] = field(default_factory=dict)
    unconfirmed: dict[int, int] = field(default_factory=dict)  # spans sent, not committed
    last_sent: dict[int, int] = field(default_factory=dict)  # partition -> source offset
    suspended_at: float | None = None  # set by suspect(), cleared by the next assignment
    epoch: int = 0  # assignments so far: a batch sent across one is not counted (sent())

    def open(self, partition: int, spans: int) -> tuple[list[Batch], dict[str, Partial] | None]:
        """Before a message of ``spans`` spans: the batches to send first (what is held,
        when this message would take it past ``max_weight`` or the partition changes
        between one message at a time and coalesced), and the partials, by series, that the
        message's spans may be added to in place (None: it makes partials of its own, one
        message at a time). :meth:`add` then takes the message."""
        if self.interval_s <= 0:
            return [], None
        singles = self.seen.get(partition, 0) < self.max_weight or self._suspended()
        h = self.held.get(partition)
        out: list[Batch] = []
        if (
            h is not None
            and h.messages
            and (h.weight + spans + 1 > self.max_weight or (h.singles is not None) != singles)
        ):
            out, h = self.take(partition), None
        if h is None:
            h = self.held[partition] = _Held(self.clock(), singles=[] if singles else None)
        return out, None if singles else h.series

    def add(
        self,
        partition: int,
        offset: int,
        made: list[Partial],
        spans: int,
        newest: int,
        records: Sequence[Any] = (),
    ) -> list[Batch]:
        """Hold one message: its partials (possibly none; those not added in place where
        :meth:`open` said), its number of spans, newest span end and the records it
        produces; return the batches to send now, in order."""
        weight = spans + 1
        if self.interval_s <= 0:
            self.seen[partition] = self.seen.get(partition, 0) + weight
            h = _Held(0.0, offset, 1, [made], weight=weight, newest=newest)
            h.records.extend(records)
            return [*self.take(partition), h.batch(partition)]
        out, _ = self.open(partition, spans)  # nothing more when the caller asked already
        self.seen[partition] = self.seen.get(partition, 0) + weight
        h = self.held[partition]
        if h.singles is not None:
            h.singles.append(made)
            h.partials += len(made)
        else:
            for p in made:
                merge_into(h.series, p)
            h.partials = len(h.series)
        h.messages += 1
        h.last = offset
        h.weight += weight
        h.newest = max(h.newest, newest)
        h.records.extend(records)
        if h.partials >= self.max_partials or self.clock() - h.since >= self.interval_s:
            out += self.take(partition)
        return out

    def _suspended(self) -> bool:
        if self.suspended_at is None:
            return False
        if self.clock() - self.suspended_at < self.resume_after_s:
            return True
        self.suspended_at = None
        return False

    def take(self, partition: int) -> list[Batch]:
        """The partition's held messages as one batch (none if nothing is held)."""
        h = self.held.pop(partition, None)
        return [] if h is None else [h.batch(partition)]

    def due(self) -> list[int]:
        """Partitions holding messages for ``interval_s`` or longer."""
        now = self.clock()
        return [p for p, h in self.held.items() if now - h.since >= self.interval_s]

    def needs_confirm(self, batch: Batch) -> bool:
        """Whether what was sent of the batch's partition must be committed, and the commit
        confirmed, before the batch is sent (rule 1)."""
        sent = self.unconfirmed.get(batch.partition, 0)
        return sent > 0 and sent + batch.weight > self.max_weight

    def confirmed(self, partition: int) -> None:
        """The broker confirmed a commit of everything sent of ``partition``."""
        self.unconfirmed[partition] = 0

    def sent(self, batch: Batch, epoch: int) -> None:
        """The batch (taken during ``epoch``) is with the broker."""
        if epoch != self.epoch:
            return  # a rebalance came meanwhile: the partition starts afresh
        p = batch.partition
        self.unconfirmed[p] = self.unconfirmed.get(p, 0) + batch.weight
        self.last_sent[p] = batch.last

    def assigned(self) -> None:
        """A rebalance ended: what was held is dropped (not sent, so not committed: every
        partition is read again from its committed offset), and each partition starts one
        message at a time (rule 2)."""
        self.epoch += 1
        self.held.clear()
        self.seen.clear()
        self.unconfirmed.clear()
        self.last_sent.clear()
        self.suspended_at = None

    def suspect(self) -> None:
        """This worker did not run for longer than its session: until the next assignment (or
        ``resume_after_s`` with none), every partition goes one message at a time. What is
        held now is sent as it is: it was read before the pause."""
        self.suspended_at = self.clock()
