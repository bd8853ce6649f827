"""faust's Kafka consumer, changed so that it never loses a record it has fetched.

faust (faust-streaming 0.15, aiokafka driver) loses fetched records in two ways; together they
were the "takeover stall" (a worker taking over stops ingesting for good, with uncommitted
input behind it; docs/ARCHITECTURE.md "Known problems"):

1. **Every partition drained while none is active.** faust asks aiokafka for the records of
   its *live* set of active partitions. aiokafka's ``Fetcher.fetched_records(partitions)``
   waits up to a second for data and then re-reads that set; an empty set means "every
   partition". When a table restore ends, faust pauses the changelog partitions while the
   stream partitions are still paused, so the set is empty: the waiting fetch returns the
   records of every assigned partition, moves their positions past them, and faust drops
   them because none is active.
2. **No seek back where nothing was committed.** Every rebalance ends by seeking the stream
   partitions to their committed offsets, which undoes such drops; but aiokafka's
   ``seek_to_committed`` leaves alone a partition without a committed offset (or with 0),
   so there the position stays past the dropped records and nothing fetches them again.

And one way it delivers them out of order: when a rebalance restored tables, the fetcher runs
while recovery resumes the stream partitions and before it seeks them, so records from the
old position (past what the revocation cleared) reach the agents first and the records
between the committed offset and that position come after them. Stateful stages skip what
is at or below the last source offset they applied, so the later, lower ones would be lost.

:class:`NoLossConsumer` fetches for a snapshot of the active set (nothing when it is empty)
and never for a stream partition assigned but not yet sought; :func:`seek_to_committed` puts
every stream partition without a committed offset at the position the reset policy gives a
new consumer. After each rebalance a partition is read again in order from its committed
offset. Stages are idempotent per source offset, so a record delivered twice is applied once.

The consumer also holds back commits where a stage asks it to (:meth:`NoLossConsumer.
limit_commits`): a stage that keeps its state in memory and writes it to its table now and
then lets faust commit only what that table already holds, so a successor re-reads the rest.

And it never waits forever at a stop or a revocation (:meth:`NoLossConsumer.wait_empty`).
faust first empties the agents' queues (``flow_control.clear()``) without acking what they
held, then waits until every message a stream took is acked. A message still queued for one
agent (or for the second of two agents reading its topic, as ``spanwatch.findings`` is read by
the labels and the rules agents) is never acked, and an idle agent's frame keeps it alive, so
the wait never ended: a worker that never exited on SIGTERM. This consumer waits while an agent
is processing an event; what the queues dropped is not committed and is read again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Set
from typing import Any

import aiokafka
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

from spanwatch.pipeline.common.commits import CommitLimits


async def seek_to_committed(
    consumer: aiokafka.AIOKafkaConsumer, *, changelogs: Collection[str], reset: str
) -> dict[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset and return those offsets.

    A stream partition with no committed offset goes where ``reset`` (``earliest`` or
    ``latest``, the consumer's ``auto_offset_reset``) puts a new consumer; changelog
    partitions (``changelogs``: topic names) are positioned by faust's table recovery and are
    left as aiokafka leaves them."""
    committed: dict[TopicPartition, int | None] = {}
    unpositioned = []
    for tp in consumer.assignment():
        offset = await consumer.committed(tp)
        committed[tp] = offset
        if tp.topic in changelogs:
            if offset:
                consumer.seek(tp, offset)
        elif offset is not None and offset >= 0:
            consumer.seek(tp, offset)
        else:
            unpositioned.append(tp)
    if unpositioned and reset == "earliest":
        await consumer.seek_to_beginning(*unpositioned)
    elif unpositioned and reset == "latest":
        await consumer.seek_to_end(*unpositioned)
    return committed


class NoLossConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """The aiokafka consumer thread, with :func:`seek_to_committed`."""

    async def seek_to_committed(self) -> Any:
        return await self.call_thread(self._seek_to_committed)

    async def _seek_to_committed(self) -> dict[TopicPartition, int | None]:
        return await seek_to_committed(
            self._ensure_consumer(),
            changelogs=frozenset(self.app.tables.changelog_topics),
            reset=self.app.conf.consumer_auto_offset_reset,
        )


class NoLossConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer that loses and reorders nothing (module docs)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_seek: set[Any] = set()  # stream partitions assigned, not sought yet
        # what stages allow to commit, and what the broker confirmed (as read at the last
        # seek, or sent since); partitions no stage limits are faust's own business
        self.commits: CommitLimits[Any] = CommitLimits(guard_unlimited=False)
        self._commit_serial = asyncio.Lock()

    def _new_consumer_thread(self) -> NoLossConsumerThread:
        return NoLossConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_assigned(self, assigned: Set[Any], generation_id: int = 0) -> None:
        self._awaiting_seek = {tp for tp in assigned if not self._is_changelog_tp(tp)}
        await super().on_partitions_assigned(assigned, generation_id)

    async def on_partitions_revoked(self, revoked: Set[Any]) -> None:
        await super().on_partitions_revoked(revoked)  # commits what may be, under the limits
        for tp in revoked:
            self.commits.forget(tp)

    async def seek_to_committed(self) -> Mapping[Any, int]:
        committed = await super().seek_to_committed()
        self.commits.confirmed = {tp: o for tp, o in committed.items() if o is not None}
        return committed

    async def perform_seek(self) -> None:
        await super().perform_seek()
        self._awaiting_seek.clear()  # read in order from here

    async def _getmany(self, active_partitions: Set[Any] | None, timeout: float) -> Any:
        if active_partitions is None:  # a client-only app reads every partition
            return await super()._getmany(None, timeout)
        wanted = set(active_partitions) - self._awaiting_seek
        if not wanted:  # aiokafka would read an empty set as "every partition"
            await asyncio.sleep(min(timeout, 0.1))
            return {}
        return await super()._getmany(wanted, timeout)

    def processing(self) -> bool:
        """Whether an agent is in the middle of an event (between taking it from its stream
        and asking for the next one)."""
        return any(
            actor.stream.current_event is not None
            for agent in self.app.agents.values()
            for actor in list(agent._actors)  # faust keeps no public list of them
        )

    async def wait_empty(self) -> None:
        """Wait for the events agents are processing, then commit what is acked (module
        docs: never for messages faust dropped from the agents' queues)."""
        while not self.should_stop and self._unacked_messages and self.processing():
            await self.commit()
            await self._wait_for_ack(timeout=1)
            self._clean_unacked_messages()
        await self.commit_and_end_transactions()

    def limit_commits(self, partitions: Iterable[Any]) -> None:
        """Commit nothing of these partitions until :meth:`allow_commit` says how far."""
        self.commits.hold(partitions)

    def allow_commit(self, tp: Any, offset: int) -> None:
        """Offsets below ``offset`` of ``tp`` may be committed (its stage saved their effect)."""
        self.commits.allow(tp, offset)

    async def commit_now(self, tp: Any, offset: int) -> bool:
        """Allow and commit offsets below ``offset`` of ``tp`` now; True once the broker
        confirmed it (or an equal or later commit), False when it refused (a rebalance) or
        the partition is not assigned to this worker any more."""
        if tp not in self.assignment():
            return False
        self.allow_commit(tp, offset)
        return await self._commit({tp: offset})

    async def _commit(self, offsets: Mapping[Any, int]) -> bool:
        # one commit at a time: a slower older one must never land after a newer one
        async with self._commit_serial:
            return await self._commit_allowed(offsets)

    async def _commit_allowed(self, offsets: Mapping[Any, int]) -> bool:
        allowed = self.commits.allowed(offsets)
        if not allowed:
            return True
        done = bool(await super()._commit(allowed))
        if done:
            self.commits.done(allowed)
        return done


def no_loss_consumer(app: Any) -> NoLossConsumer:
    """The app's consumer, which must be :class:`NoLossConsumer`: the commit limits that keep
    the windows and the merge crash-safe are its (``transport.app.SpanwatchApp`` uses it)."""
    c = app.consumer
    if not isinstance(c, NoLossConsumer):
        raise TypeError(f"commit limits need transport.consumer.NoLossConsumer, not {type(c)}")
    return c


class NoLossTransport(faust_aiokafka.Transport):
    """faust's ``kafka://`` transport with :class:`NoLossConsumer`."""

    Consumer = NoLossConsumer
