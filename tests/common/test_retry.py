"""One retry policy for every outbound call: webhooks and the judge agree on each status."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from spanwatch.pipeline.alerting.notify import classify
from spanwatch.pipeline.common.retry import backoff_s, retryable_status
from spanwatch.pipeline.safety.judge import JudgeClient, JudgeError
from spanwatch.pipeline.safety.settings import JudgeConfig
from tests.support.apprise_results import failed_call


@pytest.mark.parametrize(
    ("code", "retry"),
    [
        (500, True),
        (503, True),
        (408, True),
        (425, True),
        (429, True),
        (400, False),
        (401, False),
        (404, False),
        (413, False),
    ],
)
def test_webhooks_and_the_judge_classify_every_status_alike(code: int, retry: bool) -> None:
    assert retryable_status(code) is retry
    assert classify(failed_call(f"error={code}.")).outcome == ("retry" if retry else "config")

    class Resp:
        status = code

        async def __aenter__(self) -> Any:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

    class Session:
        def post(self, *args: object, **kwargs: object) -> Resp:
            return Resp()

    client = JudgeClient(JudgeConfig(url="http://judge.invalid/v1", model="m").judge_settings())
    client._session = Session()  # type: ignore[assignment]
    with pytest.raises(JudgeError) as err:
        asyncio.run(client._call("text"))
    assert err.value.retry is retry


def test_backoff_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        nominal = min(0.5 * 2 ** (attempt - 1), 10.0)
        assert 0.5 * nominal <= backoff_s(attempt, 0.5, cap=10.0, rng=rng) < 1.5 * nominal
    # keyed jitter is the same wait for the same notification and attempt
    assert backoff_s(3, 1.0, key="n1") == backoff_s(3, 1.0, key="n1")
    assert backoff_s(3, 1.0, key="n1") != backoff_s(3, 1.0, key="n2")
