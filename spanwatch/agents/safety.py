"""Safety stage: inline prompts/completions (from ingest) and stitched payloads (from the
stitch agent) -> content checks -> ``spanwatch.findings``.

The pattern checks run in-line, in the event that carried the text: the text is never written
to a topic for scanning. The judge model, when configured, runs on its own tasks behind a
bounded queue (:class:`~pipeline.safety.judge.JudgeQueue`): a slow judge drops samples, it
never stalls the stream. What is scanned and judged is the driver's
(:class:`~pipeline.safety.driver.SafetyDriver`); this agent sends its records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.ingest.deadletter import SourceRef
from spanwatch.pipeline.ingest.message import IngestResult
from spanwatch.pipeline.safety.driver import Record, SafetyDriver
from spanwatch.pipeline.stitch.chunks import Payload

from .ingest import SpanSink

PayloadHook = Callable[[Payload], Awaitable[None]]


def register(app: faust.App, settings: Settings) -> tuple[SpanSink, PayloadHook, SafetyDriver]:
    findings = app.topic(settings.topics.findings, key_serializer="raw", value_serializer="raw")

    async def send(trace_id: str, rec: dict[str, Any]) -> Any:
        return await findings.send(key=trace_id.encode(), value=orjson.dumps(rec))

    driver = SafetyDriver.from_settings(settings.safety, send)
    if driver.judges:

        @app.task
        async def start_judges() -> None:
            driver.start_judges()

    async def send_all(records: list[Record]) -> None:
        sent = [await send(*r) for r in records]
        for fut in sent:  # delivered before the source message can be committed
            await fut

    async def sink(where: SourceRef, result: IngestResult) -> None:
        if result.contents:
            await send_all(driver.scan(result.contents))

    async def on_payload(payload: Payload) -> None:
        await send_all(driver.scan_payload(payload))

    return sink, on_payload, driver
