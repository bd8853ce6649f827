"""Labels agent: judge evaluations on ``spanwatch.findings`` -> label partials, merged by
the window agents like a span's (closed windows go to ``spanwatch.labels``;
pipeline/clusters/labels.py)."""

from __future__ import annotations

import logging

import faust
import orjson

from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.windows.preaggregate import label_partials
from spanwatch.pipeline.windows.runtime import MetricsRuntime

from .control import log_failure
from .topics import source_topic

log = logging.getLogger("spanwatch.labels")


def register(
    app: faust.App,
    settings: Settings,
    rt: MetricsRuntime,
) -> None:
    """Judge evaluations on ``spanwatch.findings`` -> label partials (closed windows go to
    ``spanwatch.labels``); scanner findings and unlabelled results are skipped."""
    send_partials = rt.send_partials
    if send_partials is None:
        raise RuntimeError("register the window agents first (agents.windows.register)")
    findings = source_topic(app, settings.topics.findings)
    specs = rt.preagg.settings.specs
    rt.counters.setdefault("labels_counted_total", 0)
    rt.counters.setdefault("labels_errors_total", 0)

    @app.agent(findings, name="spanwatch.labels")
    async def labels(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                rec = orjson.loads(event.value or b"null")
                made = (
                    label_partials(msg.partition, msg.offset, rec, specs)
                    if isinstance(rec, dict)
                    else []
                )
                if made:
                    await send_partials(made)
                    rt.counters["labels_counted_total"] += 1
            except Exception as exc:  # never stop the agent; the record stays on its topic
                rt.counters["labels_errors_total"] += 1
                log_failure(log, exc, "label of %s/%s not counted", msg.partition, msg.offset)
