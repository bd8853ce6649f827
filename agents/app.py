"""The faust application, built from :class:`~pipeline.config.Settings`.

Broker quirks come only from the selected broker profile (``settings.profile``); nothing here
special-cases a broker.
"""

from __future__ import annotations

from typing import Any

import faust

from pipeline.config import Settings


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


def create_app(settings: Settings) -> faust.App:
    kafka = settings.kafka
    if kafka.fetch_max_wait_ms is not None:
        limit_fetch_wait(kafka.fetch_max_wait_ms)
    extra: dict[str, Any] = dict(settings.profile.faust)
    if kafka.sasl_mechanism:
        extra["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username or "",
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else "",
            mechanism=kafka.sasl_mechanism,
            ssl_context=None,
        )
    return faust.App(
        settings.worker.app_id,
        broker=faust_broker_url(kafka.bootstrap_servers),
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        datadir=str(settings.worker.data_dir),
        web_enabled=False,
        producer_compression_type=None,
        **extra,
    )
