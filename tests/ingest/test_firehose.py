"""The firehose's offset rules, driven with a stand-in consumer (no broker): commits follow
what was handled, never pass what a stage allows, never move back; what was fetched before a
rebalance is never handled after it."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from spanwatch.pipeline.config import Settings
from spanwatch.transport.firehose import Firehose

TOPIC = "otlp_spans"


class Record:
    def __init__(self, offset: int) -> None:
        self.offset, self.value, self.key, self.headers, self.timestamp = offset, b"x", None, (), 0


class StandIn:
    """An aiokafka consumer that answers getmany from a script and records commits."""

    def __init__(self, firehose: Firehose) -> None:
        self.firehose = firehose
        self.commits: list[dict[int, int]] = []
        self.refuse = False
        self.script: list[Any] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.refuse:
            raise CommitFailedError("rebalance")
        self.commits.append({tp.partition: o for tp, o in offsets.items()})

    async def committed(self, tp: TopicPartition) -> int | None:
        return None

    def highwater(self, tp: TopicPartition) -> int:
        return 100


def make() -> tuple[Firehose, StandIn, list[tuple[int, int]]]:
    app = faust.App("firehose-test", broker="kafka://127.0.0.1:1")
    fire = Firehose(app, Settings())
    handled: list[tuple[int, int]] = []

    async def handle(where: Any, value: Any, headers: Any, key: Any, ts: int) -> None:
        handled.append((where.partition, where.offset))

    fire.handle = handle
    fire.consumer = StandIn(fire)
    return fire, fire.consumer, handled


def tp(p: int) -> TopicPartition:
    return TopicPartition(TOPIC, p)


def test_commits_follow_what_was_handled_held_to_what_a_stage_allows() -> None:
    async def run() -> None:
        fire, consumer, handled = make()
        hooked: list[list[int]] = []
        fire.on_assigned(lambda tps: hooked.append([t.partition for t in tps]))
        await fire.assigned([tp(0), tp(1)])
        assert hooked == [[0, 1]] and not fire.rebalancing
        fire.limit_commits([tp(1)])  # the windows hold partition 1 back
        await fire._handle({tp(0): [Record(0), Record(1)], tp(1): [Record(5)]}, fire.handle)  # type: ignore[arg-type]
        assert handled == [(0, 0), (0, 1), (1, 5)]
        assert await fire._commit(dict(fire.handled))
        assert consumer.commits == [{0: 2}]  # partition 1: nothing allowed yet
        fire.allow_commit(tp(1), 4)
        await fire._commit(dict(fire.handled))
        assert consumer.commits[-1] == {1: 4}  # allowed, not handled up to 6
        await fire._commit(dict(fire.handled))
        assert len(consumer.commits) == 2  # nothing new: no commit, never backwards
        assert await fire.commit_now(tp(1), 6)
        assert consumer.commits[-1] == {1: 6}
        assert not await fire.commit_now(tp(3), 1)  # not this worker's
        consumer.refuse = True
        fire.allow_commit(tp(1), 10)
        fire.handled[1] = 10
        assert not await fire._commit(dict(fire.handled))
        assert fire.commits.confirmed[1] == 6 and fire.counters["commit_failed_total"] == 1

    asyncio.run(run())


def test_a_revocation_commits_what_was_handled_and_forgets_the_partitions() -> None:
    async def run() -> None:
        fire, consumer, handled = make()
        await fire.assigned([tp(0), tp(1)])
        await fire._handle({tp(0): [Record(0)]}, fire.handle)  # type: ignore[arg-type]
        await fire.revoked([tp(0), tp(1)])
        assert fire.rebalancing
        assert consumer.commits == [{0: 1}]  # what was handled commits before it goes
        assert fire.assignment() == [] and not fire.handled
        await fire.assigned([tp(1)])
        # records of a partition gone elsewhere are skipped
        await fire._handle({tp(0): [Record(1)], tp(1): [Record(0)]}, fire.handle)  # type: ignore[arg-type]
        assert handled == [(0, 0), (1, 0)]
        states = fire.partition_states()
        assert list(states) == [(TOPIC, 1)] and states[(TOPIC, 1)].end == 100

    asyncio.run(run())


def test_a_revocation_waits_for_the_batch_in_hand() -> None:
    """A rebalance that starts while a batch is handled waits for it (and its commit): a
    batch never straddles a change of owner."""

    async def run() -> None:
        fire, consumer, _ = make()
        order: list[str] = []
        release = asyncio.Event()

        async def slow(where: Any, value: Any, headers: Any, key: Any, ts: int) -> None:
            order.append(f"handle {where.offset}")
            await release.wait()

        calls = {"n": 0}

        async def getmany(timeout_ms: int, max_records: int) -> dict[Any, list[Record]]:
            calls["n"] += 1
            if calls["n"] == 1:
                await fire.assigned([tp(0)])
                return {tp(0): [Record(0), Record(1)]}
            raise asyncio.CancelledError

        async def nothing(*args: Any, **kwargs: Any) -> None:
            return None

        consumer.getmany = getmany  # type: ignore[attr-defined]
        consumer.start = consumer.stop = nothing  # type: ignore[attr-defined]
        consumer.subscribe = lambda *a, **k: None  # type: ignore[attr-defined]
        fire._new_consumer = lambda: consumer  # type: ignore[method-assign]
        fire.handle = slow
        loop_task = asyncio.ensure_future(fire.run())
        while not order:
            await asyncio.sleep(0)
        revoke = asyncio.ensure_future(fire.revoked([tp(0)]))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not revoke.done()  # waits for the batch in hand
        release.set()
        await revoke
        assert order == ["handle 0", "handle 1"]
        assert consumer.commits == [{0: 2}] and fire.assignment() == []
        with pytest.raises(asyncio.CancelledError):
            await loop_task

    asyncio.run(run())


def test_headers_from_either_client_become_one_dict() -> None:
    """faust gives a list of pairs or a mapping, aiokafka a tuple of pairs; a header without
    a value (Kafka allows null) is empty, never the text "None"."""
    from spanwatch.pipeline.ingest.message import headers_dict

    want = {"content-type": b"application/x-protobuf", "empty": b""}
    assert headers_dict((("content-type", b"application/x-protobuf"), ("empty", None))) == want
    assert headers_dict({"content-type": "application/x-protobuf", "empty": None}) == want
    assert headers_dict(None) == {} and headers_dict(()) == {}
