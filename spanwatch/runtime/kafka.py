"""Kafka clients built one way: every producer, consumer and admin client spanwatch opens
uses the deployment's connection settings (bootstrap, TLS, SASL) and the broker profile.

confluent-kafka clients (admin, CLI producers and consumers) get
:meth:`~pipeline.config.KafkaSettings.client_config`; faust's own clients (aiokafka) get
:func:`transport.app.faust_credentials` from the same settings. librdkafka's own logging goes
through Python logging at WARNING and above, once per distinct message, so an unreachable
broker is one clear error, not a screenful of ``Connection refused``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from spanwatch.pipeline.common.errors import BrokerError
from spanwatch.pipeline.config import KafkaSettings, Settings
from spanwatch.pipeline.windows.runtime import PartitionReader

log = logging.getLogger("spanwatch.kafka")


class _OncePerMessage(logging.Filter):
    """librdkafka repeats a failing connect every few ms: keep the first of each."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = record.getMessage().split("]: ", 1)[-1][:120]
        if key in self.seen:
            return False
        self.seen.add(key)
        return len(self.seen) < 1000


_RDKAFKA = logging.getLogger("spanwatch.rdkafka")
_RDKAFKA.setLevel(logging.WARNING)
_RDKAFKA.addFilter(_OncePerMessage())


def confluent_config(kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """Connection settings plus ``extra`` (profile or client settings), quiet logging."""
    return {**kafka.client_config(), "logger": _RDKAFKA, **extra}


def admin(kafka: KafkaSettings) -> AdminClient:
    return AdminClient(confluent_config(kafka))


def check_reachable(kafka: KafkaSettings, timeout: float = 15.0) -> AdminClient:
    """An admin client of a broker that answered; :class:`BrokerError` in one line if none
    did within ``timeout`` (wrong address, broker down, TLS or SASL refused)."""
    client = admin(kafka)
    try:
        client.list_topics(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else exc
        reason = err.str() if hasattr(err, "str") else str(err)
        raise BrokerError(
            f"no Kafka broker answered at {kafka.bootstrap_servers} within "
            f"{timeout:.0f} s ({reason}; security_protocol "
            f"{kafka.security_protocol}): check kafka.bootstrap_servers and that "
            "the broker runs"
        ) from None
    return client


def settings_config(settings: Settings, role: str) -> dict[str, Any]:
    """confluent-kafka settings for a ``producer`` or ``consumer`` of this deployment."""
    profile = settings.profile.producer if role == "producer" else settings.profile.consumer
    return confluent_config(settings.kafka, **profile)


def require_topic(
    settings: Settings, name: str, partitions: int | None = None, timeout: float = 15.0
) -> None:
    """:class:`BrokerError` in one line unless ``name`` exists (with ``partitions``). Checked
    before a command line tool writes, so that a broker that auto-creates unknown topics
    (Tansu: with 4 partitions) never gets one with the wrong count from us."""
    found = check_reachable(settings.kafka, timeout).list_topics(timeout=timeout).topics
    topic = found.get(name)
    if topic is None or topic.error is not None:
        raise BrokerError(
            f"topic {name!r} does not exist on {settings.kafka.bootstrap_servers} "
            "yet: start a worker (it creates its topics on the tansu profile) or "
            f"create it{f' with {partitions} partition(s)' if partitions else ''}"
        )
    if partitions is not None and len(topic.partitions) != partitions:
        raise BrokerError(
            f"topic {name!r} has {len(topic.partitions)} partitions; it must have {partitions}"
        )


def create_topics(
    conf: str | dict[str, Any],
    topics: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    timeout: float = 10.0,
) -> None:
    """Create topics that do not exist yet; existing ones are left alone. ``conf``: a
    bootstrap address or a full confluent-kafka configuration (TLS, SASL)."""
    admin = AdminClient({"bootstrap.servers": conf} if isinstance(conf, str) else conf)
    existing = set(admin.list_topics(timeout=timeout).topics)
    new = [
        NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
        for t in dict.fromkeys(topics)
        if t not in existing
    ]
    if not new:
        return
    for name, fut in admin.create_topics(new, request_timeout=timeout).items():
        try:
            fut.result(timeout=timeout)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"cannot create topic {name!r}: {exc}") from exc


def partition_reader(settings: Settings) -> PartitionReader:
    """A :data:`PartitionReader` on this deployment's broker (its own consumer each call, no
    group: it commits nothing and joins nobody)."""

    def read(
        topic: str, partition: int, end: int, max_messages: int, max_bytes: int
    ) -> tuple[list[tuple[int, bytes]], bool]:
        conf = settings_config(settings, "consumer") | {
            "group.id": f"{settings.worker.app_id}-rejoin",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
        consumer = Consumer(conf)
        try:
            low, _high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            start = max(low, end - max_messages)
            if start >= end:
                return [], False
            consumer.assign([TopicPartition(topic, partition, start)])
            read: list[tuple[int, bytes]] = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        break
                    raise BrokerError(f"reading {topic}[{partition}]: {err.str()}")
                offset = msg.offset() or 0
                if offset >= end:
                    break
                read.append((max(msg.timestamp()[1], 0) * 1_000_000, msg.value() or b""))
                if offset + 1 >= end:
                    break
        finally:
            consumer.close()
        kept, size = [], 0  # the newest messages within the byte budget
        for item in reversed(read):
            size += len(item[1])
            if size > max_bytes:
                break
            kept.append(item)
        return kept[::-1], start > low or len(kept) < len(read)

    return read
