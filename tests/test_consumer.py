"""The faust consumer never loses a fetched record (agents/consumer.py): it fetches for a
snapshot of its active partitions, and a rebalance's seek puts every stream partition without
a committed offset where a new consumer would start. The takeover through a running worker is
tested in tests/test_tokens_kafka.py (``slow`` restore)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.app import create_app
from agents.consumer import NoLossConsumer, NoLossTransport, seek_to_committed
from pipeline.config import Settings
from spanwatch.broker import EmbeddedBroker
from spanwatch.cluster import produce


class _Thread:
    """Stands in for faust's consumer thread: records what it was asked for, and empties the
    live set while the fetch waits, as faust's recovery does."""

    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.asked: list[Any] = []

    async def getmany(self, active: Any, timeout: float) -> dict[str, list[int]]:
        self.asked.append(active)
        self.live.clear()
        await asyncio.sleep(0)
        return {tp: [1] for tp in active}


def _consumer(live: set[str]) -> tuple[NoLossConsumer, _Thread]:
    consumer = object.__new__(NoLossConsumer)  # only _getmany is exercised
    thread = _Thread(live)
    consumer._thread = thread  # type: ignore[assignment]
    return consumer, thread


def test_fetches_for_a_snapshot_of_the_active_partitions() -> None:
    live = {"otlp_spans/0", "otlp_spans/1"}
    consumer, thread = _consumer(live)
    got = asyncio.run(consumer._getmany(live, 1.0))
    assert thread.asked == [{"otlp_spans/0", "otlp_spans/1"}]
    assert thread.asked[0] is not live  # emptying the live set changed nothing it asked for
    assert got == {"otlp_spans/0": [1], "otlp_spans/1": [1]}


def test_fetches_nothing_when_no_partition_is_active() -> None:
    consumer, thread = _consumer(set())
    assert asyncio.run(consumer._getmany(set(), 1.0)) == {}
    assert thread.asked == []  # aiokafka would have read an empty set as every partition


def test_the_worker_app_uses_the_no_loss_consumer() -> None:
    app = create_app(Settings())
    assert isinstance(app.transport, NoLossTransport)
    assert app.transport.Consumer is NoLossConsumer


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
