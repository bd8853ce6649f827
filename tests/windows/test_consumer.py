"""The faust consumer never loses or reorders a fetched record (transport/consumer.py): it
fetches for a snapshot of its active partitions and never for a partition not sought since its
assignment, a rebalance's seek puts every stream partition without a committed offset where a
new consumer would start, and commits stay within what a stage allows. The takeover through a
running worker is tested in tests/tokens/test_tokens_kafka.py (``slow`` restore)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import produce
from spanwatch.pipeline.config import Settings
from spanwatch.transport.app import create_app
from spanwatch.transport.consumer import NoLossConsumer, NoLossTransport, seek_to_committed


class _Thread:
    """Stands in for faust's consumer thread: records fetches and commits, and empties the
    live set of active partitions while a fetch waits, as faust's recovery does."""

    def __init__(self, live: set[TP]) -> None:
        self.live = live
        self.asked: list[Any] = []
        self.commits: list[dict[TP, int]] = []

    async def getmany(self, active: Any, timeout: float) -> dict[TP, list[int]]:
        self.asked.append(active)
        self.live.clear()
        await asyncio.sleep(0)
        return {tp: [1] for tp in active}

    async def commit(self, offsets: dict[TP, int]) -> bool:
        self.commits.append(dict(offsets))
        return True


SRC0, SRC1, PARTIALS = TP("otlp_spans", 0), TP("otlp_spans", 1), TP("spanwatch.partials", 0)


def _consumer(live: set[TP]) -> tuple[NoLossConsumer, _Thread]:
    consumer = create_app(Settings()).consumer
    assert isinstance(consumer, NoLossConsumer)
    thread = _Thread(live)
    consumer._thread = thread  # type: ignore[assignment]
    return consumer, thread


def test_fetches_for_a_snapshot_of_the_active_partitions() -> None:
    live = {SRC0, SRC1}
    consumer, thread = _consumer(live)
    got = asyncio.run(consumer._getmany(live, 1.0))
    assert thread.asked == [{SRC0, SRC1}]
    assert thread.asked[0] is not live  # emptying the live set changed nothing it asked for
    assert got == {SRC0: [1], SRC1: [1]}


def test_fetches_nothing_when_no_partition_is_active() -> None:
    consumer, thread = _consumer(set())
    assert asyncio.run(consumer._getmany(set(), 0.01)) == {}
    assert thread.asked == []  # aiokafka would have read an empty set as every partition


def test_a_partition_assigned_but_not_sought_yet_is_not_fetched() -> None:
    consumer, thread = _consumer({SRC0, SRC1})
    consumer._awaiting_seek = {SRC1}  # what on_partitions_assigned leaves until the seek
    asyncio.run(consumer._getmany({SRC0, SRC1}, 1.0))
    assert thread.asked == [{SRC0}]


def test_commits_stay_within_what_a_stage_allows() -> None:
    consumer, thread = _consumer(set())

    async def scenario() -> None:
        consumer.limit_commits([PARTIALS])
        await consumer._commit({SRC0: 10, PARTIALS: 40})  # nothing of PARTIALS saved yet
        consumer.allow_commit(PARTIALS, 25)
        await consumer._commit({SRC0: 12, PARTIALS: 41})  # clamped to what was saved
        await consumer._commit({PARTIALS: 44})  # the limit has not moved: nothing to send
        consumer.allow_commit(PARTIALS, 30)
        await consumer._commit({PARTIALS: 29})

    asyncio.run(scenario())
    assert thread.commits == [{SRC0: 10}, {SRC0: 12, PARTIALS: 25}, {PARTIALS: 29}]


def test_commit_now_waits_for_a_commit_in_flight_and_refuses_a_partition_not_assigned() -> None:
    """The ingest side must know a commit landed before it sends more (pipeline.windows.coalesce):
    ``commit_now`` waits behind a slower commit in flight, never lets an older one land last,
    and says False for a partition this worker does not own."""
    consumer, thread = _consumer(set())
    release = asyncio.Event()
    commit = thread.commit

    calls: list[dict[TP, int]] = []

    async def slow_first(offsets: dict[TP, int]) -> bool:
        calls.append(offsets)
        if len(calls) == 1:
            await release.wait()
        return await commit(offsets)

    thread.commit = slow_first  # type: ignore[method-assign]
    thread.assignment = lambda: {SRC0}  # type: ignore[attr-defined]

    async def scenario() -> list[bool]:
        consumer.limit_commits([SRC0])
        consumer.allow_commit(SRC0, 5)
        periodic = asyncio.ensure_future(consumer._commit({SRC0: 5}))  # faust's, in flight
        await asyncio.sleep(0)
        now = asyncio.ensure_future(consumer.commit_now(SRC0, 9))
        await asyncio.sleep(0)
        assert not now.done()  # behind the slower one
        release.set()
        return [await periodic, await now, await consumer.commit_now(SRC1, 3)]

    assert asyncio.run(scenario()) == [True, True, False]
    assert thread.commits == [{SRC0: 5}, {SRC0: 9}]


class _Dropped:
    """A message a stream took and faust then dropped from an agent's queue (at a stop or a
    revocation, ``flow_control.clear()``): nobody will ever ack it."""

    acked = False
    refcount = 1
    tp, offset = SRC0, 7


def test_processing_is_an_agent_in_the_middle_of_an_event_and_a_stop_waits_only_for_that() -> None:
    dropped = _Dropped()

    async def scenario() -> None:
        app = create_app(Settings())  # in the loop its consumer's events belong to
        consumer = app.consumer
        assert isinstance(consumer, NoLossConsumer)
        entered, release = asyncio.Event(), asyncio.Event()

        @app.agent(app.topic("busy"))
        async def hold(stream: Any) -> None:
            async for _ in stream.events():
                entered.set()
                await release.wait()

        assert not consumer.processing()
        async with hold.test_context() as agent:
            app.agents["busy"] = agent  # the running actor, as the worker's agents are
            await agent.put(b"x", wait=False)
            await entered.wait()
            assert consumer.processing()
            consumer._unacked_messages.add(dropped)  # type: ignore[arg-type]
            stop = asyncio.ensure_future(consumer.wait_empty())
            for _ in range(5):
                await asyncio.sleep(0)
            assert not stop.done()  # an event in process is waited for
            release.set()
            await asyncio.wait_for(stop, 30)  # then no longer, though `dropped` is not acked
            assert not consumer.processing()
        assert dropped in consumer._unacked_messages  # never acked, so never committed

    asyncio.run(scenario())


def test_a_stop_never_waits_for_a_message_no_agent_will_process() -> None:
    """faust's own wait looped until the process was killed (a worker that never exited on
    SIGTERM, seen in CI); here it ends, and commits nothing of the dropped message."""
    dropped = _Dropped()

    async def scenario() -> tuple[NoLossConsumer, _Thread]:
        consumer, thread = _consumer(set())  # in the loop its consumer's events belong to
        consumer._unacked_messages.add(dropped)  # type: ignore[arg-type]
        await asyncio.wait_for(consumer.wait_empty(), 10)  # a bound, so a hang fails
        return consumer, thread

    consumer, thread = asyncio.run(scenario())
    assert dropped in consumer._unacked_messages
    assert thread.commits == []


def test_the_worker_app_uses_the_no_loss_consumer() -> None:
    app = create_app(Settings())
    assert isinstance(app.transport, NoLossTransport)
    assert isinstance(app.consumer, NoLossConsumer)


@pytest.mark.broker
def test_seek_puts_partitions_without_a_commit_where_a_new_consumer_starts(
    tmp_path: Path,
) -> None:
    topics = ["src", "app-table-changelog"]
    with EmbeddedBroker(topics=topics, partitions=1, log_path=tmp_path / "tansu.log") as b:
        for topic in topics:
            produce(b.bootstrap, topic, [b"x%d" % i for i in range(10)])
        src, changelog = TopicPartition("src", 0), TopicPartition("app-table-changelog", 0)

        async def scenario() -> list[dict[TopicPartition, int]]:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=b.bootstrap,
                group_id="g",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await consumer.start()
            try:
                consumer.assign([src, changelog])
                for tp in (src, changelog):  # read everything: positions at the end
                    while await consumer.position(tp) < 10:
                        await consumer.getmany(tp, timeout_ms=1000)
                seen = []
                for commit in (None, 4, 0):
                    if commit is not None:
                        await consumer.commit({src: commit})
                    got = await seek_to_committed(
                        consumer, changelogs={changelog.topic}, reset="earliest"
                    )
                    assert got[src] == commit
                    seen.append({tp: await consumer.position(tp) for tp in (src, changelog)})
                return seen
            finally:
                await consumer.stop()

        seen = asyncio.run(scenario())
    # no commit: the beginning (aiokafka's own seek left the position at the end); a commit,
    # 0 included: the commit; the changelog is faust's recovery's to position, left alone
    assert seen == [{src: 0, changelog: 10}, {src: 4, changelog: 10}, {src: 0, changelog: 10}]
