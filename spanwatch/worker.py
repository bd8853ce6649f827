"""``spanwatch worker``: build the faust app from settings and run it until stopped."""

from __future__ import annotations

import logging

import faust
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY, start_http_server

from agents import anomaly, ingest, metrics, safety, stitch
from agents.app import create_app
from pipeline.config import Settings
from pipeline.errors import BrokerError
from spanwatch.broker import create_topics
from spanwatch.prom import LatestWindows, SpanwatchCollector

log = logging.getLogger("spanwatch.worker")


def source_partitions(settings: Settings) -> int:
    """Partition count of the source topic: every one must report a watermark."""
    admin = AdminClient(settings.kafka.client_config())
    md = admin.list_topics(topic=settings.topics.source, timeout=15)
    topic = md.topics.get(settings.topics.source)
    if topic is None or topic.error is not None or not topic.partitions:
        raise BrokerError(f"source topic {settings.topics.source!r} not found on "
                          f"{settings.kafka.bootstrap_servers}: create it first")
    return len(topic.partitions)


def run_worker(settings: Settings) -> None:
    """Run one worker of the consumer group ``settings.worker.app_id`` (blocks)."""
    if settings.profile.create_topics:
        # Topics must exist with the right partition count before faust subscribes.
        create_topics(settings.kafka.bootstrap_servers, settings.topics.all_topics(),
                      settings.topics.partitions, settings.topics.replication_factor)
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    sinks = []
    runtime = None
    if settings.metrics.enabled or settings.tokens.enabled:
        n_src = source_partitions(settings)
        sink, runtime = metrics.register(app, settings, n_src)
        sinks.append(sink)
    safety_rt, on_payload = None, None
    if settings.safety.enabled:
        safety_sink, on_payload, safety_rt = safety.register(app, settings)
        sinks.append(safety_sink)
    stitch_rt = None
    if settings.stitch.enabled:
        stitch_sink, stitch_rt = stitch.register(app, settings, on_payload)
        sinks.append(stitch_sink)
    stats = ingest.register(app, settings, sinks)
    anomaly_stage = anomaly.register(app, settings) if settings.anomaly.enabled else None
    port = settings.metrics.prometheus_port
    if port:
        latest = runtime.latest if runtime else LatestWindows()
        REGISTRY.register(SpanwatchCollector(latest, stats, runtime,
                                             stitch_rt.counters if stitch_rt else None,
                                             safety_rt, anomaly_stage))
        start_http_server(port, addr=settings.metrics.prometheus_bind)
        log.info("Prometheus metrics on http://%s:%d/metrics", settings.metrics.prometheus_bind,
                 port)
    log.info("spanwatch worker: profile %s, source %s, broker %s", settings.kafka.profile,
             settings.topics.source, settings.kafka.bootstrap_servers)
    worker = faust.Worker(app, loglevel=settings.worker.loglevel, quiet=True,
                          redirect_stdouts=False)
    worker.execute_from_commandline()
