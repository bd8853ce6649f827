"""The judge hook against a local OpenAI-compatible fake: success, timeout, 5xx, 4xx, circuit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from spanwatch.pipeline.safety.judge import (
    CircuitBreaker,
    Evaluation,
    JudgeClient,
    JudgeError,
    JudgeQueue,
    evaluation_record,
)
from spanwatch.pipeline.safety.scan import ContentItem
from spanwatch.pipeline.safety.settings import JudgeConfig


class FakeJudge:
    """Answers /v1/chat/completions from a script of behaviours, records requests."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        self.auth.append(request.headers.get("Authorization"))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if step == "slow":
            await asyncio.sleep(2)
        if step.isdigit():
            return web.Response(status=int(step), text="nope")
        content = {
            "ok": '{"label": "violation", "score": 0.92, "explanation": "bad"}',
            "slow": '{"label": "pass", "score": 0.1}',
            "weird": '{"label": "maybe"}',
            "garbage": "I think it is fine",
        }[step]
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "choices": [{"message": {"role": "assistant", "content": content}}],
            }
        )


async def with_server(
    script: list[str], body: Callable[[str, FakeJudge], Awaitable[None]]
) -> FakeJudge:
    fake = FakeJudge(script)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await body(f"http://127.0.0.1:{port}/v1", fake)
    finally:
        await runner.cleanup()
    return fake


async def no_sleep(_: float) -> None:
    return None


def client(url: str, **kw: Any) -> JudgeClient:
    settings = JudgeConfig(
        url=url,
        model="judge-1",
        api_key="s3cret",
        timeout_s=0.3,
        retries=kw.pop("retries", 2),
        sample_rate=1.0,
        **kw,
    ).judge_settings()
    return JudgeClient(settings, sleep=no_sleep)


def test_success_request_shape_and_evaluation() -> None:
    async def body(url: str, fake: FakeJudge) -> None:
        c = client(url)
        ev = await c.evaluate("is this text ok?")
        await c.close()
        assert ev == Evaluation("policy", 0.92, "violation", "bad", "chatcmpl-1")
        assert ev.attributes() == {
            "gen_ai.evaluation.name": "policy",
            "gen_ai.evaluation.score.value": 0.92,
            "gen_ai.evaluation.score.label": "violation",
            "gen_ai.evaluation.explanation": "bad",
            "gen_ai.response.id": "chatcmpl-1",
        }

    fake = asyncio.run(with_server(["ok"], body))
    req = fake.requests[0]
    assert req["model"] == "judge-1" and req["messages"][1]["content"] == "is this text ok?"
    assert "violation" in req["messages"][0]["content"]
    assert fake.auth == ["Bearer s3cret"]
    assert "s3cret" not in repr(JudgeConfig(url="u", model="m", api_key="s3cret").judge_settings())


def test_5xx_is_retried_then_succeeds() -> None:
    async def body(url: str, fake: FakeJudge) -> None:
        c = client(url)
        assert (await c.evaluate("x")).score_label == "violation"
        await c.close()

    assert len(asyncio.run(with_server(["500", "503", "ok"], body)).requests) == 3


@pytest.mark.parametrize(
    "script,attempts,message",
    [
        (["slow"], 3, "timed out"),
        (["500"], 3, "HTTP 500"),
        (["404"], 1, "HTTP 404"),  # a configuration error: no retry
        (["weird"], 1, "not in"),
        (["garbage"], 1, "not understood"),
    ],
)
def test_failures(script: list[str], attempts: int, message: str) -> None:
    async def body(url: str, fake: FakeJudge) -> None:
        c = client(url)
        with pytest.raises(JudgeError, match=message):
            await c.evaluate("x")
        await c.close()

    assert len(asyncio.run(with_server(script, body)).requests) == attempts


def test_unreachable_judge_is_a_retryable_error() -> None:
    async def body() -> None:
        c = client("http://127.0.0.1:9/v1", retries=0)
        with pytest.raises(JudgeError, match="unreachable") as info:
            await c.evaluate("x")
        assert info.value.retry
        await c.close()

    asyncio.run(body())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_circuit_opens_and_closes_through_the_queue() -> None:
    clock = Clock()
    emitted: list[Evaluation] = []

    async def emit(item: ContentItem, ev: Evaluation) -> None:
        emitted.append(ev)

    async def body(url: str, fake: FakeJudge) -> None:
        c = client(url, retries=0)
        c.breaker = CircuitBreaker(failure_threshold=2, reset_after_s=30, clock=clock)
        q = JudgeQueue(c, emit)
        item = ContentItem("text", "output", "attr", "t", "s")
        assert await q.judge_one(item) is None  # 500
        assert c.breaker.state == "closed"
        assert await q.judge_one(item) is None  # 500 -> open
        assert c.breaker.state == "open"
        assert await q.judge_one(item) is None  # not even called
        assert q.counters["skipped_circuit_open"] == 1
        clock.now = 31
        assert c.breaker.state == "half_open"
        fake.script[:] = ["500", "ok"]
        assert await q.judge_one(item) is None  # the trial fails: open again
        assert c.breaker.state == "open"
        clock.now = 62
        assert await q.judge_one(item) is not None  # the trial succeeds: closed
        assert c.breaker.state == "closed"
        await c.close()

    fake = asyncio.run(with_server(["500"], body))
    assert len(fake.requests) == 4 and len(emitted) == 1


def test_queue_never_waits_drops_when_full_and_samples_by_span() -> None:
    async def emit(item: ContentItem, ev: Evaluation) -> None:
        raise AssertionError("not called")

    async def body() -> None:
        c = client("http://127.0.0.1:9/v1", queue_size=2)
        q = JudgeQueue(c, emit)  # tasks not started: nothing drains
        results = [q.submit(ContentItem("t", "output", "a", "t", f"s{i}")) for i in range(5)]
        assert results == [True, True, False, False, False]
        assert q.counters["dropped_queue_full"] == 3
        c.settings.sample_rate = 0.5
        picks = [c.sampled(f"span{i}:a") for i in range(1000)]
        assert 400 < sum(picks) < 600
        assert picks == [c.sampled(f"span{i}:a") for i in range(1000)]  # same on every worker
        await c.close()

    asyncio.run(body())


def test_queue_tasks_drain_and_emit() -> None:
    got: list[str] = []

    async def emit(item: ContentItem, ev: Evaluation) -> None:
        got.append(f"{item.span_id}:{ev.score_label}")

    async def body(url: str, fake: FakeJudge) -> None:
        q = JudgeQueue(client(url, max_concurrency=2), emit)
        q.start()
        for i in range(4):
            q.submit(ContentItem("t", "output", "a", "t", f"s{i}"))
        await asyncio.wait_for(q.queue.join(), 10)
        await q.stop()

    asyncio.run(with_server(["ok"], body))
    assert sorted(got) == [f"s{i}:violation" for i in range(4)]


def test_evaluation_record() -> None:
    item = ContentItem("t", "output", "gen_ai.output.messages", "trace", "span", "svc", "m", 5)
    rec = evaluation_record(
        item,
        Evaluation("policy", 0.9, "violation", "why"),
        flag_labels=("violation",),
        severity="high",
    )
    assert rec["flagged"] and rec["severity"] == "high" and rec["kind"] == "judge"
    assert rec["evaluation"]["gen_ai.evaluation.score.label"] == "violation"
    ok = evaluation_record(
        item, Evaluation("policy", 0.1, "pass"), flag_labels=("violation",), severity="high"
    )
    assert not ok["flagged"] and ok["severity"] == "low"
    assert json.dumps(rec)
