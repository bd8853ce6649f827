"""The firehose: the collector's topic read in batches, inside the faust app.

``ingest.reader: batch``. One aiokafka consumer (faust's own client, used directly) in the
group ``<app_id>-firehose`` reads up to ``ingest.batch_max_messages`` messages per call and
hands each to the ingest handler (:class:`agents.ingest.IngestHandler`: decode, normalize,
the windows' batches, safety, stitching), with no faust event per message. faust's per-event
machinery cost ~100 µs per message, the batch read ~6 (``spanwatch bench read``,
docs/BENCHMARKS.md). It runs as an app task, so it starts and stops with the worker, reports
its partitions to ``/status`` and scales with the number of workers like the agents do.

Offsets (at-least-once, the same rules as faust's path with
:class:`transport.consumer.NoLossConsumer`):

* a partition's offsets commit up to the last message handled, and never past what a stage
  allows (:meth:`Firehose.allow_commit`: the windows let a source offset commit once the
  broker has every partial up to it);
* a batch and a rebalance never overlap: a revocation waits for the batch in hand, and after
  it each partition is read again from its committed offset, in order (stateful stages skip
  what they already applied, so they must never see a lower offset after a higher one);
  aiokafka never returns records fetched for a position the rebalance reset.

Switching ``ingest.reader`` changes the consumer group reading the source topic: the new
group starts where ``consumer_auto_offset_reset`` puts it (docs/ARCHITECTURE.md, "The
firehose").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiokafka
import faust
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from spanwatch.pipeline.common.commits import CommitLimits
from spanwatch.pipeline.common.errors import describe_error
from spanwatch.pipeline.common.health import PartitionState
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.ingest.deadletter import SourceRef

from .app import faust_credentials
from .source import Ends

log = logging.getLogger("spanwatch.firehose")

# (where, value, headers as the client gives them, key, broker timestamp ns):
# agents.ingest.IngestHandler
Handler = Callable[[SourceRef, bytes | None, Any, bytes | None, int], Awaitable[None]]


class _Listener(ConsumerRebalanceListener):
    def __init__(self, firehose: Firehose) -> None:
        self.firehose = firehose

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.firehose.revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.firehose.assigned(list(assigned))


class Firehose:
    """Reads the source topic in batches and hands each message to :attr:`handle` (module
    docs). Also the window agents' :class:`SourceSide`."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.topic = settings.topics.source
        self.group = f"{settings.worker.app_id}-firehose"
        self.max_messages = settings.ingest.batch_max_messages
        self.handle: Handler | None = None  # set by agents.ingest.register
        self.consumer: Any = None
        self.mine: set[int] = set()
        self.handled: dict[int, int] = {}  # partition -> next offset after the last handled
        # partition -> what a stage allows to commit, and what the broker confirmed
        self.commits: CommitLimits[int] = CommitLimits()
        self._rebalancing = True  # until the first assignment
        self._hooks: list[Callable[[list[Any]], None]] = []
        self._batch = asyncio.Lock()  # a batch in hand and a rebalance never overlap
        self._commit_serial = asyncio.Lock()  # an older commit never lands after a newer one
        self.counters = {"batches_total": 0, "commit_failed_total": 0}

    # --- SourceSide -----------------------------------------------------------------------
    @property
    def rebalancing(self) -> bool:
        return self._rebalancing

    def assignment(self) -> list[Any]:
        return [TopicPartition(self.topic, p) for p in sorted(self.mine)]

    def ends(self, tps: list[Any]) -> Ends:
        out: Ends = {}
        for tp in tps:
            end = None
            if self.consumer is not None:
                try:
                    end = self.consumer.highwater(TopicPartition(self.topic, tp.partition))
                except Exception:  # not assigned (any more)
                    end = None
            out[tp.partition] = (end, self.commits.confirmed.get(tp.partition))
        return out

    def on_assigned(self, hook: Callable[[list[Any]], None]) -> None:
        self._hooks.append(hook)

    def limit_commits(self, tps: Iterable[Any]) -> None:
        self.commits.hold(tp.partition for tp in tps)

    def allow_commit(self, tp: Any, offset: int) -> None:
        self.commits.allow(tp.partition, offset)

    async def commit_now(self, tp: Any, offset: int) -> bool:
        if tp.partition not in self.mine:
            return False
        self.allow_commit(tp, offset)
        return await self._commit({tp.partition: offset})

    # --- health ---------------------------------------------------------------------------
    def partition_states(self) -> dict[tuple[str, int], PartitionState]:
        """The source partitions this worker reads, for ``/status`` (as faust's are)."""
        ends = self.ends(self.assignment())
        return {
            (self.topic, p): PartitionState(
                ends[p][0],
                self.commits.confirmed.get(p),
                self.handled[p] - 1 if p in self.handled else None,
            )
            for p in sorted(self.mine)
        }

    # --- the loop -------------------------------------------------------------------------
    def _new_consumer(self) -> Any:
        conf, kafka = self.app.conf, self.settings.kafka
        fetch_wait = kafka.fetch_max_wait_ms or self.settings.profile.fetch_max_wait_ms or 500
        return aiokafka.AIOKafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers.replace(";", ","),
            group_id=self.group,
            client_id=f"{self.group}-{id(self):x}",
            enable_auto_commit=False,
            auto_offset_reset=conf.consumer_auto_offset_reset,
            max_partition_fetch_bytes=conf.consumer_max_fetch_size,
            fetch_max_wait_ms=fetch_wait,
            session_timeout_ms=int(conf.broker_session_timeout * 1000),
            heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000),
            rebalance_timeout_ms=int(conf.broker_rebalance_timeout * 1000),
            request_timeout_ms=int(conf.broker_request_timeout * 1000),
            max_poll_interval_ms=int((conf.broker_max_poll_interval or 300) * 1000),
            **credentials_to_aiokafka_auth(faust_credentials(kafka)),
        )

    async def join(self) -> None:
        """Start the consumer and join the group (when the app starts: the group join runs
        beside faust's own and its table restore, not after them)."""
        if self.consumer is not None:
            return
        consumer = self.consumer = self._new_consumer()
        await consumer.start()
        consumer.subscribe([self.topic], listener=_Listener(self))
        log.info("firehose: reading %s in batches as group %s", self.topic, self.group)

    async def run(self) -> None:
        """Read, hand on, commit; until the app stops (the task is cancelled). Records are
        handed on only once faust's tables are restored (an app task starts then)."""
        handle = self.handle
        if handle is None:
            raise RuntimeError("the firehose has no handler (agents.ingest.register sets it)")
        await self.join()
        consumer = self.consumer
        try:
            while True:
                got = await consumer.getmany(timeout_ms=500, max_records=self.max_messages)
                # taken with no await in between: a rebalance that ended during the fetch
                # left only records at the new positions in ``got`` (aiokafka's fetcher
                # drops the rest), and the next one waits for this batch (revoked)
                async with self._batch:
                    await self._handle(got, handle)
                    await self._commit_handled()
        finally:
            self.consumer = None
            try:
                await consumer.stop()
            except Exception as exc:  # stopping anyway
                log.info("firehose consumer stop: %s", describe_error(exc))

    async def _handle(self, got: dict[Any, list[Any]], handle: Handler) -> None:
        if not got:
            return
        self.counters["batches_total"] += 1
        for tp, records in got.items():
            part = tp.partition
            if part not in self.mine:
                continue
            for r in records:
                await handle(
                    SourceRef(tp.topic, part, r.offset),
                    r.value,
                    r.headers,
                    r.key,
                    int(r.timestamp or 0) * 1_000_000,
                )
                self.handled[part] = r.offset + 1

    async def _commit_handled(self) -> bool:
        """Commit what was handled of this worker's partitions (as far as allowed)."""
        return await self._commit({p: o for p, o in self.handled.items() if p in self.mine})

    async def _commit(self, offsets: dict[int, int]) -> bool:
        """Commit ``offsets`` (partition -> next offset), each held to what its stage allows
        and never moved back; True once the broker confirmed them."""
        async with self._commit_serial:
            allowed = self.commits.allowed(offsets)
            if not allowed or self.consumer is None:
                return not allowed
            try:
                await self.consumer.commit(
                    {TopicPartition(self.topic, p): o for p, o in allowed.items()}
                )
            except (KafkaError, AssertionError) as exc:  # a rebalance: read again from there
                self.counters["commit_failed_total"] += 1
                log.info("firehose: commit of %s not confirmed: %s", allowed, describe_error(exc))
                return False
            self.commits.done(allowed)
            return True

    async def revoked(self, tps: list[Any]) -> None:
        """Before a rebalance: the batch in hand is finished and committed as far as may be."""
        async with self._batch:
            self._rebalancing = True
            await self._commit_handled()
            for tp in tps:
                self.mine.discard(tp.partition)
                self.handled.pop(tp.partition, None)
                self.commits.forget(tp.partition)

    async def assigned(self, tps: list[Any]) -> None:
        """After a rebalance: read each partition again from its committed offset."""
        self.mine = {tp.partition for tp in tps if tp.topic == self.topic}
        for tp in tps:
            try:
                offset = await self.consumer.committed(tp)
            except Exception:
                offset = None
            if offset is not None and offset >= 0:
                self.commits.confirmed[tp.partition] = offset
        self._rebalancing = False
        for hook in self._hooks:
            hook(self.assignment())
