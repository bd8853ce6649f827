"""The faust application, built from :class:`~pipeline.config.Settings`.

Broker quirks come only from the selected broker profile (``settings.profile``); nothing here
special-cases a broker.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from spanwatch.pipeline.config import KafkaSettings, Settings

from .consumer import NoLossTransport


def faust_broker_url(bootstrap: str) -> str:
    """``host1:9092,host2:9092`` -> ``kafka://host1:9092;host2:9092`` (faust's form)."""
    hosts = [h.strip() for h in bootstrap.replace(";", ",").split(",") if h.strip()]
    return "kafka://" + ";".join(hosts)


def limit_fetch_wait(ms: int) -> None:
    """Cap the fetch long-poll of faust's consumers (faust passes a fixed 1500 ms to aiokafka).

    ``kafka.fetch_max_wait_ms`` asks for it: Tansu answers a fetch when its max wait is over,
    not when records arrive, so the cap bounds each hop's latency there. It patches the
    aiokafka class faust instantiates, for this (worker) process.
    """
    import aiokafka

    base = aiokafka.AIOKafkaConsumer
    if getattr(base, "spanwatch_fetch_wait_ms", None) == ms:
        return

    class CappedWaitConsumer(base):  # type: ignore[misc, valid-type]
        spanwatch_fetch_wait_ms = ms

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["fetch_max_wait_ms"] = min(kwargs.get("fetch_max_wait_ms", ms), ms)
            super().__init__(*args, **kwargs)

    aiokafka.AIOKafkaConsumer = CappedWaitConsumer


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context faust's clients use, from the same files as librdkafka's."""
    if not kafka.tls:
        return None
    ctx = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    ctx.check_hostname = kafka.ssl_check_hostname
    if kafka.ssl_certfile and kafka.ssl_keyfile:
        password = kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        ctx.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile), password)
    return ctx


def faust_credentials(kafka: KafkaSettings) -> Any:
    """faust's ``broker_credentials`` for these settings (``None`` for PLAINTEXT)."""
    ctx = ssl_context(kafka)
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username or "",
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else "",
            mechanism=kafka.sasl_mechanism,
            ssl_context=ctx,
        )
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None


class KeepBuffersOnResume(FlowControlEvent):
    """faust's flow control, except that resuming keeps what the streams have buffered.

    faust clears every stream buffer twice in a rebalance: when partitions are revoked (right:
    those events may belong to another worker now) and again when the flow resumes after
    recovery. The second clear loses data: recovery resumes the stream partitions and seeks
    them to their committed offsets before it, so what the fetcher delivers between that seek
    and the clear is dropped while the consumer's position is already past it, and nothing
    fetches it again (one cause of the "takeover stall"; :mod:`transport.consumer` removes the
    others).

    Everything buffered at resume time was fetched after the revocation's clear, for
    partitions this worker owns, so keeping it is safe: it is processed in order, and what the
    seek re-delivers is handled again (at-least-once; every stateful stage skips offsets it
    has already applied).
    """

    def resume(self) -> None:
        self._suspend.clear()
        self._resume.set()


class SpanwatchApp(faust.App):
    """The faust app with :class:`KeepBuffersOnResume` as its flow control and a consumer
    that never loses a fetched record (:mod:`transport.consumer`). ``on_app_start`` hooks run
    when the app starts, before faust joins its group and restores tables (the firehose
    joins its own group meanwhile, not after)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_app_start: list[Callable[[], Awaitable[None]]] = []

    async def on_start(self) -> None:
        await super().on_start()
        for hook in self.on_app_start:
            await hook()

    def _new_transport(self) -> Any:
        return NoLossTransport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return KeepBuffersOnResume(loop=self.loop)


def create_app(settings: Settings) -> faust.App:
    kafka = settings.kafka
    fetch_wait = kafka.fetch_max_wait_ms or settings.profile.fetch_max_wait_ms
    if fetch_wait is not None:
        limit_fetch_wait(fetch_wait)
    extra: dict[str, Any] = dict(settings.profile.faust)
    credentials = faust_credentials(kafka)
    if credentials is not None:  # TLS and/or SASL for every faust consumer and producer
        extra["broker_credentials"] = credentials
    return SpanwatchApp(
        settings.worker.app_id,
        broker=faust_broker_url(kafka.bootstrap_servers),
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        datadir=str(settings.worker.data_dir),
        web_enabled=False,
        producer_compression_type=None,
        **extra,
    )
