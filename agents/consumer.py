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

:class:`NoLossConsumer` fetches for a snapshot of the active set (nothing when it is empty),
and :func:`seek_to_committed` puts every stream partition without a committed offset at the
position the reset policy gives a new consumer. What faust still drops at a pause (records of
a batch that arrive after a revocation began) is fetched again after the seek that ends the
rebalance. Stages are idempotent per source offset, so a record delivered twice is applied
once.
"""

from __future__ import annotations

from collections.abc import Collection, Set
from typing import Any

import aiokafka
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka


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
    """faust's aiokafka consumer fetching for a snapshot of its active partitions."""

    def _new_consumer_thread(self) -> NoLossConsumerThread:
        return NoLossConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions: Set[Any] | None, timeout: float) -> Any:
        if active_partitions is None:  # a client-only app reads every partition
            return await super()._getmany(None, timeout)
        wanted = set(active_partitions)
        if not wanted:  # aiokafka would read an empty set as "every partition"
            return {}
        return await super()._getmany(wanted, timeout)


class NoLossTransport(faust_aiokafka.Transport):
    """faust's ``kafka://`` transport with :class:`NoLossConsumer`."""

    Consumer = NoLossConsumer
