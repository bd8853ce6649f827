"""An optional judge model: an OpenAI-compatible chat endpoint labels a text.

The judge is slow and can fail, so it never sits on the stream's path: :class:`JudgeQueue`
takes items without waiting (a full queue drops and counts), a fixed number of tasks call the
endpoint with a timeout and retries (5xx, timeouts and connection errors with exponential
back-off and jitter; 4xx not: that is a configuration error), and a :class:`CircuitBreaker`
stops calling a judge that keeps failing until a trial call succeeds. Sampling is by a hash
of the span id, so every worker samples the same spans.

Results have the shape of the GenAI ``gen_ai.evaluation.result`` event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..common.clock import Timer
from ..common.errors import SpanwatchError, describe_error
from ..common.retry import backoff_s, retryable_status
from .scan import ContentItem

log = logging.getLogger("spanwatch.judge")

DEFAULT_PROMPT = (
    "You are a content-policy judge. Classify the user's text for {name}. Answer with JSON "
    'only: {{"label": one of {labels}, "score": a number from 0 to 1 (1 = certainly the '
    'worst label), "explanation": one short sentence}}.'
)
_ANSWER = (
    ' Answer with JSON only: {{"label": one of {labels}, "score": a number from 0 to 1, '
    '"explanation": one short sentence}}.'
)
# The role of an item that holds a span's prompt and completion together (see exchange_item)
EXCHANGE = "exchange"
# Ready-made evaluations (``safety.judges: [{preset: hallucination, url: ..., model: ...}]``):
# what each labels, which labels become findings, which texts it reads, and its prompt.
PRESETS: dict[str, dict[str, Any]] = {
    "hallucination": {
        "name": "hallucination",
        "labels": ("supported", "unsupported", "no_context"),
        "flag_labels": ("unsupported",),
        "roles": (EXCHANGE,),
        "prompt": "You check an assistant's ANSWER against the CONTEXT it was given (the "
        "prompt, with any retrieved documents). Label it unsupported when it states facts "
        "that the context neither contains nor implies, or contradicts it; supported when "
        "the context backs every factual claim; no_context when the context holds nothing to "
        "check against. The score is the risk that the answer is not supported." + _ANSWER,
    },
    "sentiment": {
        "name": "sentiment",
        "labels": ("positive", "neutral", "negative"),
        "flag_labels": (),
        "roles": ("input",),
        "prompt": "Label the sentiment of the user's message. The score is how negative it "
        "is." + _ANSWER,
    },
    "topic": {
        "name": "topic",
        "flag_labels": (),
        "roles": ("input",),
        "prompt": "Label the topic of the user's request. Choose the closest label; the score "
        "is how sure you are." + _ANSWER,
    },
}
MAX_EXCHANGE_PART = 6000  # characters of each side of an exchange sent to the judge


def exchange_item(items: list[ContentItem]) -> ContentItem | None:
    """One span's prompt and completion as one item (role :data:`EXCHANGE`), for judges
    that need both (does the answer follow from the context?); None unless both are there."""
    context = [i for i in items if i.role in ("system", "input", "tool")]
    answer = [i for i in items if i.role == "output"]
    if not context or not answer:
        return None
    first = answer[0]
    text = (
        "CONTEXT:\n"
        + "\n\n".join(i.text for i in context)[-MAX_EXCHANGE_PART:]
        + "\n\nANSWER:\n"
        + "\n\n".join(i.text for i in answer)[:MAX_EXCHANGE_PART]
    )
    return ContentItem(
        text,
        EXCHANGE,
        f"{EXCHANGE}:{first.location}",
        first.trace_id,
        first.span_id,
        first.service,
        first.model,
        first.time_ns,
    )


class JudgeError(SpanwatchError):
    """A judge call failed; ``retry`` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True, slots=True)
class Evaluation:
    """``gen_ai.evaluation.result``: name, score value and label, explanation."""

    name: str
    score_value: float | None
    score_label: str | None
    explanation: str | None = None
    response_id: str | None = None

    def attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gen_ai.evaluation.name": self.name}
        if self.score_value is not None:
            out["gen_ai.evaluation.score.value"] = self.score_value
        if self.score_label is not None:
            out["gen_ai.evaluation.score.label"] = self.score_label
        if self.explanation:
            out["gen_ai.evaluation.explanation"] = self.explanation[:500]
        if self.response_id:
            out["gen_ai.response.id"] = self.response_id
        return out


class CircuitBreaker:
    """closed -> (``failure_threshold`` failures in a row) -> open -> (``reset_after_s``) ->
    half-open: one trial call; success closes, failure opens again."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_after_s: float = 30.0,
        clock: Timer = time.monotonic,
    ) -> None:
        self.failure_threshold, self.reset_after_s, self._clock = (
            failure_threshold,
            reset_after_s,
            clock,
        )
        self.failures = 0
        self.opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self.opened_at >= self.reset_after_s else "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial:
            self._trial = True
            return True
        return False

    def record_success(self) -> None:
        self.failures, self.opened_at, self._trial = 0, None, False

    def record_failure(self) -> None:
        self.failures += 1
        if self._trial or self.failures >= self.failure_threshold:
            self.opened_at, self._trial = self._clock(), False


@dataclass
class JudgeSettings:
    """What a :class:`JudgeClient` needs, built from the configuration by
    :meth:`~pipeline.safety.settings.JudgeConfig.judge_settings`: the defaults live there."""

    url: str  # base URL, e.g. http://judge:8000/v1 (…/chat/completions is appended)
    model: str
    api_key: str | None
    name: str
    labels: tuple[str, ...]
    flag_labels: tuple[str, ...]
    sample_rate: float
    timeout_s: float
    retries: int
    backoff_s: float
    max_concurrency: int
    queue_size: int
    max_chars: int
    prompt: str = DEFAULT_PROMPT  # the configuration's prompt: None there means this one

    def __repr__(self) -> str:
        return f"JudgeSettings(url={self.url!r}, model={self.model!r}, api_key=<secret>)"


class JudgeClient:
    """One evaluation = one chat completion, parsed into :class:`Evaluation`."""

    def __init__(
        self,
        settings: JudgeSettings,
        *,
        breaker: CircuitBreaker | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.breaker = breaker or CircuitBreaker()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def sampled(self, key: str) -> bool:
        rate = self.settings.sample_rate
        return rate >= 1.0 or zlib.crc32(key.encode()) < rate * 2**32

    async def evaluate(self, text: str) -> Evaluation:
        """Call the judge with retries; raises :class:`JudgeError` (after the retries)."""
        s = self.settings
        last: JudgeError | None = None
        for attempt in range(s.retries + 1):
            if attempt:
                await self._sleep(backoff_s(attempt, s.backoff_s, rng=self._rng))
            try:
                return await self._call(text[: s.max_chars])
            except JudgeError as exc:
                last = exc
                if not exc.retry:
                    break
        assert last is not None
        raise last

    async def _call(self, text: str) -> Evaluation:
        s = self.settings
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {s.api_key}"} if s.api_key else {}
        body = {
            "model": s.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": s.prompt.format(name=s.name, labels=list(s.labels))},
                {"role": "user", "content": text},
            ],
        }
        try:
            async with self._session.post(
                s.url.rstrip("/") + "/chat/completions",
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=s.timeout_s),
            ) as resp:
                if retryable_status(resp.status):
                    raise JudgeError(f"judge answered HTTP {resp.status}", retry=True)
                if resp.status >= 400:
                    raise JudgeError(
                        f"judge answered HTTP {resp.status} (check url, model and api key)",
                        retry=False,
                    )
                data = await resp.json(content_type=None)
        except TimeoutError:
            raise JudgeError(f"judge timed out after {s.timeout_s}s", retry=True) from None
        except aiohttp.ClientError as exc:
            raise JudgeError(f"judge unreachable: {type(exc).__name__}", retry=True) from None
        return self._parse(data)

    def _parse(self, data: Any) -> Evaluation:
        try:
            content = data["choices"][0]["message"]["content"]
            answer = json.loads(content.strip().removeprefix("```json").strip("`\n "))
            label = str(answer["label"])
            score = answer.get("score")
            score = None if score is None else min(1.0, max(0.0, float(score)))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise JudgeError(
                f"judge answer not understood: {type(exc).__name__}", retry=False
            ) from None
        if label not in self.settings.labels:
            raise JudgeError(
                f"judge label {label[:40]!r} not in {list(self.settings.labels)}", retry=False
            )
        expl = answer.get("explanation")
        return Evaluation(
            self.settings.name,
            score,
            label,
            str(expl) if expl is not None else None,
            data.get("id"),
        )


Emit = Callable[[ContentItem, Evaluation], Awaitable[None]]


class JudgeQueue:
    """Off the hot path: :meth:`submit` never waits; ``max_concurrency`` tasks drain it."""

    def __init__(self, client: JudgeClient, emit: Emit) -> None:
        self.client, self._emit = client, emit
        self.queue: asyncio.Queue[ContentItem] = asyncio.Queue(client.settings.queue_size)
        self.counters: Counter[str] = Counter()  # outcomes (exported on /metrics)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for _ in range(self.client.settings.max_concurrency):
            self._tasks.append(asyncio.ensure_future(self._run()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.client.close()

    def submit(self, item: ContentItem) -> bool:
        c = self.counters
        if not self.client.sampled(f"{item.span_id}:{item.location}"):
            c["not_sampled"] += 1
            return False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            c["dropped_queue_full"] += 1
            return False
        c["queued"] += 1
        return True

    async def _run(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self.judge_one(item)
            finally:
                self.queue.task_done()

    async def judge_one(self, item: ContentItem) -> Evaluation | None:
        c, breaker = self.counters, self.client.breaker
        if not breaker.allow():
            c["skipped_circuit_open"] += 1
            return None
        try:
            ev = await self.client.evaluate(item.text)
        except JudgeError as exc:
            breaker.record_failure()
            c["failed"] += 1
            log.warning("judge failed for %s: %s (circuit %s)", item.location, exc, breaker.state)
            return None
        breaker.record_success()
        c["evaluated"] += 1
        try:
            await self._emit(item, ev)
        except Exception as exc:
            c["emit_errors"] += 1
            log.error("judge result for %s not emitted: %s", item.location, describe_error(exc))
        return ev


def evaluation_record(
    item: ContentItem, ev: Evaluation, *, flag_labels: tuple[str, ...], severity: str
) -> dict[str, Any]:
    """A ``spanwatch.findings`` record of kind ``judge`` (docs/SCHEMAS.md): every evaluation
    is reported; ``flagged`` ones (label in ``flag_labels``) carry the configured severity."""
    flagged = ev.score_label in flag_labels
    return {
        "type": "evaluation",
        "kind": "judge",
        "category": ev.name,
        "severity": severity if flagged else "low",
        "flagged": flagged,
        "score": ev.score_value if ev.score_value is not None else (1.0 if flagged else 0.0),
        "evaluation": ev.attributes(),
        **item.provenance(),
    }
