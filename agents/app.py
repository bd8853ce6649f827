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


def create_app(settings: Settings) -> faust.App:
    kafka = settings.kafka
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
