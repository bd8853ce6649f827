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

from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.ingest.deadletter import SourceRef
from spanwatch.pipeline.ingest.message import IngestResult
from spanwatch.pipeline.safety.judge import (
    EXCHANGE,
    CircuitBreaker,
    Evaluation,
    JudgeClient,
    JudgeQueue,
    evaluation_record,
    exchange_item,
)
from spanwatch.pipeline.safety.scan import ContentItem, SafetyEngine
from spanwatch.pipeline.stitch.chunks import Payload

from .ingest import SpanSink

log = logging.getLogger("spanwatch.safety")
PayloadHook = Callable[[Payload], Awaitable[None]]


@dataclass
class SafetyRuntime:
    engine: SafetyEngine
    judges: dict[str, JudgeQueue] = field(default_factory=dict)  # by evaluation name
    counters: Counter[str] = field(default_factory=Counter)


def register(app: faust.App, settings: Settings) -> tuple[SpanSink, PayloadHook, SafetyRuntime]:
    cfg = settings.safety
    findings = app.topic(settings.topics.findings, key_serializer="raw", value_serializer="raw")
    rt = SafetyRuntime(cfg.engine())
    roles = frozenset(cfg.roles)
    judged: list[tuple[frozenset[str], JudgeQueue]] = []  # (roles it reads, its queue)
    for judge_cfg in cfg.all_judges():
        queue = JudgeQueue(
            JudgeClient(
                judge_cfg.judge_settings(),
                breaker=CircuitBreaker(
                    failure_threshold=judge_cfg.failure_threshold,
                    reset_after_s=judge_cfg.reset_after_s,
                ),
            ),
            _emitter(rt, findings, judge_cfg.flag_labels, judge_cfg.severity),
        )
        rt.judges[judge_cfg.name] = queue
        judged.append((frozenset(judge_cfg.roles), queue))
    exchanges = any(EXCHANGE in r for r, _ in judged)

    if judged:

        @app.task
        async def start_judges() -> None:
            for q in rt.judges.values():
                q.start()

    def submit(item: ContentItem) -> None:
        for judge_roles, queue in judged:
            if item.role in judge_roles:
                queue.submit(item)

    async def scan(items: Iterable[ContentItem]) -> None:
        sent = []
        by_span: dict[tuple[str, str], list[ContentItem]] = {}
        for item in items:
            if exchanges and item.span_id:
                by_span.setdefault((item.trace_id, item.span_id), []).append(item)
            if item.role not in roles:
                rt.counters["skipped_role"] += 1
                continue
            for rec in rt.engine.scan_item(item):
                sent.append(
                    await findings.send(key=item.trace_id.encode(), value=orjson.dumps(rec))
                )
            submit(item)
        for parts in by_span.values():  # a span's prompt and completion, together
            if (pair := exchange_item(parts)) is not None:
                submit(pair)
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


def _emitter(
    rt: SafetyRuntime, findings: faust.TopicT, flag_labels: tuple[str, ...], severity: str
) -> Callable[[ContentItem, Evaluation], Awaitable[None]]:
    """What a judge does with an evaluation: mask what its explanation quotes, then send the
    ``spanwatch.findings`` record."""

    async def emit(item: ContentItem, ev: Evaluation) -> None:
        if ev.explanation:  # a judge may quote the text it judged: mask what it quotes
            ev = Evaluation(
                ev.name,
                ev.score_value,
                ev.score_label,
                rt.engine.redact(ev.explanation),
                ev.response_id,
            )
        rec = evaluation_record(item, ev, flag_labels=flag_labels, severity=severity)
        await findings.send(key=item.trace_id.encode(), value=orjson.dumps(rec))

    return emit
