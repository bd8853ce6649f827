"""Engine agent: the collector's metrics topic -> inference-engine gauge partials, merged by
the window agents like a span's (closed windows go to ``spanwatch.engine``;
pipeline/engine/gauges.py)."""

from __future__ import annotations

import logging

import faust

from spanwatch.pipeline.common.errors import DecodeError, describe_error
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.engine.gauges import decode_metrics
from spanwatch.pipeline.ingest.deadletter import DeadLetter, SourceRef
from spanwatch.pipeline.windows.preaggregate import engine_partials
from spanwatch.pipeline.windows.runtime import MetricsRuntime

from .control import log_failure
from .topics import DeadLetterSender, source_topic

log = logging.getLogger("spanwatch.engine")
ENGINE_COUNTERS = ("engine_samples_total", "engine_dead_letters_total", "engine_errors_total")


def register(
    app: faust.App,
    settings: Settings,
    rt: MetricsRuntime,
) -> None:
    """The collector's metrics topic -> engine gauge partials (merged with the span series'
    partials; closed windows go to ``spanwatch.engine``)."""
    send_partials = rt.send_partials
    if send_partials is None:
        raise RuntimeError("register the window agents first (agents.windows.register)")
    topics = settings.topics
    source = source_topic(app, topics.metrics_source)
    send_dead_letter = DeadLetterSender(
        app, topics.deadletter, settings.ingest.deadletter_max_bytes
    )
    specs = rt.preagg.settings.specs
    for name in ENGINE_COUNTERS:
        rt.counters.setdefault(name, 0)

    @app.agent(source, name="spanwatch.engine")
    async def engine(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            where = SourceRef(msg.topic, msg.partition, msg.offset)
            try:
                samples = decode_metrics(event.value or b"")
            except Exception as exc:  # an escaped exception would stop the agent for good
                reason, detail = (
                    (exc.reason, exc.detail)
                    if isinstance(exc, DecodeError)
                    else ("agent_error", describe_error(exc))
                )
                rt.counters["engine_dead_letters_total"] += 1
                value = event.value or b""
                await send_dead_letter(DeadLetter(reason, detail, value, where, key=msg.key))
                continue
            try:
                await send_partials(engine_partials(msg.partition, msg.offset, samples, specs))
            except Exception as exc:
                rt.counters["engine_errors_total"] += 1
                log_failure(log, exc, "engine partials of %s not sent", where)
                continue
            rt.counters["engine_samples_total"] += len(samples)
