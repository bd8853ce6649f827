"""``spanwatch worker``: build the faust app from settings and run it until stopped."""

from __future__ import annotations

import contextlib
import gc
import logging

import faust
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from spanwatch.agents import (
    alerting,
    anomaly,
    engine,
    health,
    ingest,
    labels,
    merge,
    safety,
    stitch,
    windows,
)
from spanwatch.pipeline.alerting.loader import RuleSet, load_rules
from spanwatch.pipeline.alerting.notify import resolve_url
from spanwatch.pipeline.alerting.routing import unusable_receivers
from spanwatch.pipeline.common.durations import parse_duration_ns
from spanwatch.pipeline.common.errors import BrokerError, ConfigError
from spanwatch.pipeline.common.settings import expand_env
from spanwatch.pipeline.config import Settings
from spanwatch.runtime import logsafe
from spanwatch.runtime.build import core_build
from spanwatch.runtime.httpserver import serve
from spanwatch.runtime.kafka import (
    check_reachable,
    confluent_config,
    create_topics,
    partition_reader,
)
from spanwatch.runtime.logsafe import url_secrets
from spanwatch.runtime.prom import LatestWindows, SpanwatchCollector, WindowTotals, counting_spec
from spanwatch.runtime.ui import UiServer, UiThread
from spanwatch.transport.app import create_app
from spanwatch.transport.firehose import Firehose

log = logging.getLogger("spanwatch.worker")


def source_partitions(settings: Settings, admin: AdminClient) -> int:
    """Partition count of the source topic: every one must report a watermark."""
    topic = admin.list_topics(timeout=15).topics.get(settings.topics.source)
    if topic is None or topic.error is not None or not topic.partitions:
        raise BrokerError(
            f"source topic {settings.topics.source!r} not found on "
            f"{settings.kafka.bootstrap_servers}: create it first"
        )
    return len(topic.partitions)


def without_missing_metrics_topic(settings: Settings, admin: AdminClient) -> Settings:
    """The engine gauges read the collector's metrics topic, which a deployment that exports
    no metrics does not have: then they are off (one log line), never a worker that fails or
    waits for a topic that will not come."""
    name = settings.topics.metrics_source
    if not (settings.engine.enabled and name):
        return settings
    topic = admin.list_topics(timeout=15).topics.get(name)
    if topic is not None and topic.error is None and topic.partitions:
        return settings
    log.warning(
        "engine gauges off: topic %r not found on %s (create it and point the collector's "
        "metrics pipeline at it, or set topics.metrics_source: '')",
        name,
        settings.kafka.bootstrap_servers,
    )
    return settings.model_copy(
        update={"engine": settings.engine.model_copy(update={"enabled": False})}
    )


def load_alerting(settings: Settings) -> RuleSet | None:
    """The validated rule set, or :class:`ConfigError` naming every problem (also unset
    ``${VAR}`` in receiver URLs): the worker refuses to start on a broken rule set."""
    if not settings.alerting.enabled:
        return None
    ruleset = load_rules(list(settings.alerting.rules), settings.metrics.dimensions)
    missing = unusable_receivers(ruleset.config)
    if missing:
        raise ConfigError("alert receivers cannot be used:\n  " + "\n  ".join(missing))
    return ruleset


def check_single_partition(settings: Settings, admin: AdminClient) -> None:
    found = admin.list_topics(timeout=15).topics
    for name in settings.topics.single_partition_topics():
        topic = found.get(name)
        if topic is not None and topic.error is None and len(topic.partitions) != 1:
            raise BrokerError(
                f"topic {name!r} has {len(topic.partitions)} partitions; it must "
                "have exactly 1 (one owner for all alert state)"
            )


def config_secrets(settings: Settings, ruleset: RuleSet | None) -> set[str]:
    """Every secret of this configuration, for :mod:`spanwatch.runtime.logsafe`: receiver URLs
    (as expanded from the environment) and their parts, Kafka and judge passwords and keys."""
    found: set[str] = set()
    for receiver in ruleset.config.receivers.values() if ruleset is not None else ():
        for url in receiver.urls:
            try:
                found |= url_secrets(resolve_url(receiver, url))
            except ConfigError:
                found |= url_secrets(url)
    kafka = settings.kafka
    for secret in (kafka.sasl_password, kafka.ssl_key_password):
        if secret is not None:
            found.add(secret.get_secret_value())
    if settings.ui.token is not None:
        raw = settings.ui.token.get_secret_value()
        found.add(raw)
        with contextlib.suppress(ConfigError):
            found.add(expand_env(raw))
    for judge in settings.safety.all_judges():
        if judge.api_key is not None:
            key = judge.api_key.get_secret_value()
            found.add(key)
            with contextlib.suppress(ConfigError):
                found.add(expand_env(key))
    return found


class SafeLogWorker(faust.Worker):
    """faust's worker, with the log filter of :mod:`~spanwatch.runtime.logsafe` put back on
    the root logger's handlers after faust has replaced them."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        logsafe.install(logger)


def run_worker(settings: Settings) -> None:
    """Run one worker of the consumer group ``settings.worker.app_id`` (blocks)."""
    ruleset = load_alerting(settings)
    logsafe.install(secrets=config_secrets(settings, ruleset))
    if ruleset is not None:
        log.info(
            "alert rules: %d rules from %d files, receivers %s",
            len(ruleset.rules),
            len(ruleset.files),
            sorted(ruleset.config.receivers),
        )
    admin = check_reachable(settings.kafka)  # one clear line when no broker answers
    if settings.profile.create_topics:
        # Topics must exist with the right partition count before faust subscribes.
        conf = confluent_config(settings.kafka)
        create_topics(
            conf,
            settings.topics.all_topics(),
            settings.topics.partitions,
            settings.topics.replication_factor,
        )
        create_topics(
            conf, settings.topics.single_partition_topics(), 1, settings.topics.replication_factor
        )
    if ruleset is not None:
        check_single_partition(settings, admin)
    settings = without_missing_metrics_topic(settings, admin)
    settings.worker.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    # ingest.reader batch: the source topic is read in batches (transport/firehose.py)
    fire = Firehose(app, settings) if settings.ingest.reader == "batch" else None
    sinks = []
    runtime = None
    if settings.metrics.enabled or settings.tokens.enabled:
        n_src = source_partitions(settings, admin)
        sink, runtime = windows.register(
            app, settings, n_src, partition_reader(settings), source=fire
        )
        sinks.append(sink)
        merge.register(app, settings, runtime)
        if settings.engine.enabled and settings.topics.metrics_source:
            engine.register(app, settings, runtime)
        if settings.labels.enabled and settings.topics.findings:
            labels.register(app, settings, runtime)
    safety_rt, on_payload = None, None
    if settings.safety.enabled:
        safety_sink, on_payload, safety_rt = safety.register(app, settings)
        sinks.append(safety_sink)
    stitch_rt = None
    if settings.stitch.enabled:
        stitch_sink, stitch_rt = stitch.register(app, settings, on_payload)
        sinks.append(stitch_sink)
    # the window agents send the normalized records with their batches (agents/windows.py)
    stats = ingest.register(app, settings, sinks, publish_spans=runtime is None, firehose=fire)
    anomaly_stage = anomaly.register(app, settings) if settings.anomaly.enabled else None
    alerting_rt = alerting.register(app, settings, ruleset) if ruleset is not None else None
    tracker = health.register(
        app, parse_duration_ns(settings.worker.stall_after) / 1e9, firehose=fire
    )
    port = settings.metrics.prometheus_port
    if port:
        latest = LatestWindows()
        totals = WindowTotals(counting_spec(settings.metrics.window_settings()))
        if runtime is not None:
            runtime.on_window_closed += [latest.on_window_closed, totals.on_window_closed]
        REGISTRY.register(
            SpanwatchCollector(
                latest,
                stats,
                runtime,
                stitch_rt.counters if stitch_rt else None,
                safety_rt,
                anomaly_stage,
                alerting_rt,
                tracker,
                stitch_rt,
                totals,
            )
        )
        serve(port, settings.metrics.prometheus_bind, tracker)
        log.info(
            "metrics and health on http://%s:%d/metrics, /healthz, /readyz, /status",
            settings.metrics.prometheus_bind,
            port,
        )
    if settings.ui.enabled:  # the web view, in its own thread and event loop
        UiThread(UiServer(settings, settings.ui.bind, settings.ui.port)).start()
    log.info(
        "spanwatch worker: profile %s, source %s, broker %s, core %s",
        settings.kafka.profile,
        settings.topics.source,
        settings.kafka.bootstrap_servers,
        core_build(),
    )
    worker = SafeLogWorker(
        app, loglevel=settings.worker.loglevel, quiet=True, redirect_stdouts=False
    )
    tune_gc(settings.worker.gc_threshold)
    worker.execute_from_commandline()


def tune_gc(threshold: tuple[int, int, int] | None) -> None:
    """Collect cycles less often (``worker.gc_threshold``), and never again scan what exists
    at start (modules, the app, settings): ``gc.freeze`` moves it out of the collector's
    generations."""
    gc.collect()
    gc.freeze()
    if threshold is not None:
        gc.set_threshold(*threshold)
