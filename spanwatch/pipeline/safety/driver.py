"""The safety stage as a pure driver: which texts are scanned, which go to which judge, and
the ``spanwatch.findings`` records that come out.

The safety agent (``agents/safety.py``) hands it the texts of each message (or a stitched
payload) and sends the records it returns; each judge's evaluations come back through
``send`` from its own tasks, off the hot path (:class:`~pipeline.safety.judge.JudgeQueue`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..stitch.chunks import Payload
from .judge import (
    EXCHANGE,
    CircuitBreaker,
    Emit,
    Evaluation,
    JudgeClient,
    JudgeQueue,
    evaluation_record,
    exchange_item,
)
from .scan import ContentItem, SafetyEngine
from .settings import JudgeConfig, SafetySettings

Record = tuple[str, dict[str, Any]]  # (trace id: the record's key, the record)
Send = Callable[[str, dict[str, Any]], Awaitable[Any]]


class SafetyDriver:
    """Scans the texts of the configured ``roles`` in line and queues them for the judges
    that read their role (a span's prompt and completion together for judges that read
    ``exchange``)."""

    def __init__(self, engine: SafetyEngine, roles: Iterable[str]) -> None:
        self.engine = engine
        self.roles = frozenset(roles)
        self.judges: dict[str, JudgeQueue] = {}  # by evaluation name
        self._routes: list[tuple[frozenset[str], JudgeQueue]] = []  # (roles it reads, queue)
        self._exchanges = False  # whether a judge reads a span's prompt and completion together
        self.counters: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, cfg: SafetySettings, send: Send) -> SafetyDriver:
        """The engine and every judge of ``cfg``; a judge's records go out through ``send``."""
        driver = cls(cfg.engine(), cfg.roles)
        for judge in cfg.all_judges():
            breaker = CircuitBreaker(
                failure_threshold=judge.failure_threshold, reset_after_s=judge.reset_after_s
            )
            client = JudgeClient(judge.judge_settings(), breaker=breaker)
            driver.add_judge(judge, JudgeQueue(client, driver.emitter(judge, send)))
        return driver

    def add_judge(self, judge: JudgeConfig, queue: JudgeQueue) -> None:
        self.judges[judge.name] = queue
        self._routes.append((frozenset(judge.roles), queue))
        self._exchanges = self._exchanges or EXCHANGE in judge.roles

    def start_judges(self) -> None:
        for queue in self.judges.values():
            queue.start()

    def scan(self, items: Iterable[ContentItem]) -> list[Record]:
        """The findings records of ``items`` (to send before their source message commits);
        every scanned item, and each span's exchange, is offered to its judges."""
        records: list[Record] = []
        exchanges = self._exchanges
        by_span: dict[tuple[str, str], list[ContentItem]] = {}
        for item in items:
            if exchanges and item.span_id:
                by_span.setdefault((item.trace_id, item.span_id), []).append(item)
            if item.role not in self.roles:
                self.counters["skipped_role"] += 1
                continue
            records.extend((item.trace_id, rec) for rec in self.engine.scan_item(item))
            self._submit(item)
        for parts in by_span.values():  # a span's prompt and completion, together
            if (pair := exchange_item(parts)) is not None:
                self._submit(pair)
        return records

    def scan_payload(self, payload: Payload) -> list[Record]:
        """A stitched payload's text, scanned as one item of its role."""
        s = payload.state
        if not payload.text:
            return []
        location = f"payload:{s.payload_id}"
        return self.scan([ContentItem(payload.text, s.role, location, s.trace_id, s.span_id)])

    def evaluation(self, item: ContentItem, ev: Evaluation, judge: JudgeConfig) -> Record:
        """A judge's evaluation as a findings record, with what its explanation quotes of the
        text masked (a judge may quote the text it judged)."""
        if ev.explanation:
            explanation = self.engine.redact(ev.explanation)
            ev = Evaluation(ev.name, ev.score_value, ev.score_label, explanation, ev.response_id)
        rec = evaluation_record(item, ev, flag_labels=judge.flag_labels, severity=judge.severity)
        return item.trace_id, rec

    def emitter(self, judge: JudgeConfig, send: Send) -> Emit:
        async def emit(item: ContentItem, ev: Evaluation) -> None:
            await send(*self.evaluation(item, ev, judge))

        return emit

    def _submit(self, item: ContentItem) -> None:
        for roles, queue in self._routes:
            if item.role in roles:
                queue.submit(item)
