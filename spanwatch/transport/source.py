"""Who reads the source topic, as the window agents see it (:class:`SourceSide`): faust's own
consumer (:class:`FaustSource`, ``ingest.reader: faust``) or the firehose
(:class:`~transport.firehose.Firehose`, ``ingest.reader: batch``). The windows need its
assignment and end offsets, and a say in its commits (a source offset commits once the broker
has every partial up to it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import faust

from .consumer import NoLossConsumer, no_loss_consumer

Ends = dict[int, tuple[int | None, int | None]]  # partition -> (end offset, committed offset)


class SourceSide(Protocol):
    """What the window agents need from whoever reads the source topic: its assignment and
    ends, and a say in its commits (:class:`FaustSource` or :class:`Firehose`)."""

    topic: str

    @property
    def rebalancing(self) -> bool: ...

    def assignment(self) -> list[Any]: ...

    def ends(self, tps: list[Any]) -> Ends: ...

    def on_assigned(self, hook: Callable[[list[Any]], None]) -> None: ...

    def limit_commits(self, tps: Iterable[Any]) -> None: ...

    def allow_commit(self, tp: Any, offset: int) -> None: ...

    async def commit_now(self, tp: Any, offset: int) -> bool: ...


class FaustSource:
    """The source topic read by faust's own consumer (``ingest.reader: faust``)."""

    def __init__(self, app: faust.App, topic: str) -> None:
        self.app, self.topic = app, topic

    @property
    def rebalancing(self) -> bool:
        return bool(self.app.rebalancing)

    def consumer(self) -> NoLossConsumer:
        return no_loss_consumer(self.app)

    def assignment(self) -> list[Any]:
        return [tp for tp in self.app.consumer.assignment() if tp.topic == self.topic]

    def ends(self, tps: list[Any]) -> Ends:
        """End and committed offset of each partition. The end offset is the consumer's own
        (``None`` until a fetch answers since the assignment), never the monitor's last seen
        one, which outlives a revocation."""
        consumer: Any = self.app.consumer
        committed = getattr(consumer, "_committed_offset", {})
        out: Ends = {}
        for tp in tps:
            try:
                end = consumer.highwater(tp)
            except Exception:
                end = None
            out[tp.partition] = (end, committed.get(tp))
        return out

    def on_assigned(self, hook: Callable[[list[Any]], None]) -> None:
        @self.app.on_partitions_assigned.connect  # type: ignore[arg-type]  # typed as sync
        async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
            hook([tp for tp in assigned if tp.topic == self.topic])

    def limit_commits(self, tps: Iterable[Any]) -> None:
        self.consumer().limit_commits(tps)

    def allow_commit(self, tp: Any, offset: int) -> None:
        self.consumer().allow_commit(tp, offset)

    async def commit_now(self, tp: Any, offset: int) -> bool:
        return await self.consumer().commit_now(tp, offset)
