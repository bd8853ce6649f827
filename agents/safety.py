"""Safety stage: inline prompts/completions (from ingest) and stitched payloads (from the
stitch agent) -> content checks -> ``spanwatch.findings``.

The pattern checks run in-line, in the event that carried the text: the text is never written
to a topic for scanning. The judge model, when configured, runs on its own tasks behind a
bounded queue (:class:`~pipeline.safety.judge.JudgeQueue`): a slow judge drops samples, it
never stalls the stream.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import faust
import orjson

from spanwatch.agents.ingest import SpanSink
from spanwatch.pipeline.chunks import Payload
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.deadletter import SourceRef
from spanwatch.pipeline.ingest import IngestResult
from spanwatch.pipeline.safety.engine import ContentItem, SafetyEngine
from spanwatch.pipeline.safety.judge import (
    CircuitBreaker,
    Evaluation,
    JudgeClient,
    JudgeQueue,
    evaluation_record,
)

log = logging.getLogger("spanwatch.safety")
PayloadHook = Callable[[Payload], Awaitable[None]]


@dataclass
class SafetyRuntime:
    engine: SafetyEngine
    judge: JudgeQueue | None = None
    counters: Counter[str] = field(default_factory=Counter)


def register(app: faust.App, settings: Settings) -> tuple[SpanSink, PayloadHook, SafetyRuntime]:
    cfg = settings.safety
    findings = app.topic(settings.topics.findings, key_serializer="raw", value_serializer="raw")
    rt = SafetyRuntime(cfg.engine())
    roles = frozenset(cfg.roles)
    judge_cfg = cfg.judge
    if judge_cfg is not None:
        client = JudgeClient(
            judge_cfg.judge_settings(),
            breaker=CircuitBreaker(
                failure_threshold=judge_cfg.failure_threshold, reset_after_s=judge_cfg.reset_after_s
            ),
        )

        async def emit(item: ContentItem, ev: Evaluation) -> None:
            if ev.explanation:  # a judge may quote the text it judged: mask what it quotes
                ev = Evaluation(
                    ev.name,
                    ev.score_value,
                    ev.score_label,
                    rt.engine.redact(ev.explanation),
                    ev.response_id,
                )
            rec = evaluation_record(
                item, ev, flag_labels=judge_cfg.flag_labels, severity=judge_cfg.severity
            )
            await findings.send(key=item.trace_id.encode(), value=orjson.dumps(rec))

        rt.judge = JudgeQueue(client, emit)
        judge_roles = frozenset(judge_cfg.roles)

        @app.task
        async def start_judge() -> None:
            assert rt.judge is not None
            rt.judge.start()

    async def scan(items: Iterable[ContentItem]) -> None:
        sent = []
        for item in items:
            if item.role not in roles:
                rt.counters["skipped_role"] += 1
                continue
            for rec in rt.engine.scan_item(item):
                sent.append(
                    await findings.send(key=item.trace_id.encode(), value=orjson.dumps(rec))
                )
            if rt.judge is not None and item.role in judge_roles:
                rt.judge.submit(item)
        for fut in sent:  # delivered before the source message can be committed
            await fut

    async def sink(where: SourceRef, result: IngestResult) -> None:
        if result.contents:
            await scan(result.contents)

    async def on_payload(payload: Payload) -> None:
        s = payload.state
        if payload.text:
            await scan(
                [
                    ContentItem(
                        payload.text, s.role, f"payload:{s.payload_id}", s.trace_id, s.span_id
                    )
                ]
            )

    return sink, on_payload, rt
