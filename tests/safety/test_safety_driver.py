"""The safety stage as a pure driver (pipeline/safety/driver.py): what is scanned, what each
judge is offered, and the records that come out, with no broker and no judge endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

from spanwatch.pipeline.safety.driver import SafetyDriver
from spanwatch.pipeline.safety.judge import Evaluation
from spanwatch.pipeline.safety.scan import ContentItem
from spanwatch.pipeline.safety.settings import SafetySettings
from spanwatch.pipeline.stitch.chunks import Payload, PayloadState

AWS_KEY = "AKIA2OGYBAH6STMMNXNN"
JUDGE = {"url": "http://127.0.0.1:9/v1", "model": "m", "sample_rate": 1.0}


def _driver(**safety: Any) -> SafetyDriver:
    async def send(trace_id: str, rec: dict[str, Any]) -> None:
        raise AssertionError("judges are not started here")

    return SafetyDriver.from_settings(SafetySettings(**safety), send)


def _queued(driver: SafetyDriver, name: str) -> list[ContentItem]:
    queue = driver.judges[name].queue
    return [queue.get_nowait() for _ in range(queue.qsize())]


def test_texts_of_the_configured_roles_are_scanned_and_offered_to_their_judges() -> None:
    d = _driver(
        roles=["input", "output"],
        judges=[
            {**JUDGE, "name": "policy", "roles": ["output"]},
            {**JUDGE, "name": "grounded", "roles": ["exchange"]},
        ],
    )
    items = [
        ContentItem("what is my key?", "input", "a", "t1", "s1"),
        ContentItem(f"your key is {AWS_KEY}", "output", "b", "t1", "s1"),
        ContentItem(f"tool said {AWS_KEY}", "tool", "c", "t1", "s1"),  # not a scanned role
    ]
    records = asyncio.run(_scan(d, items))
    assert [(key, rec["category"]) for key, rec in records] == [("t1", "aws_access_key_id")]
    assert AWS_KEY not in str(records)  # findings never carry the text they found
    assert d.counters["skipped_role"] == 1
    assert [i.location for i in _queued(d, "policy")] == ["b"]
    (pair,) = _queued(d, "grounded")  # the span's prompt and completion, together
    assert pair.role == "exchange" and "CONTEXT:" in pair.text and "ANSWER:" in pair.text


async def _scan(d: SafetyDriver, items: list[ContentItem]) -> list[tuple[str, dict[str, Any]]]:
    return d.scan(items)  # the judges' queues are made on the running loop, as in a worker


def test_a_stitched_payload_is_scanned_as_one_item_of_its_role() -> None:
    d = _driver()
    state = PayloadState("p1", "t9", "s9", "output", "text", first_seen_ns=0)
    records = d.scan_payload(Payload(state, "complete", None, f"key {AWS_KEY}"))
    assert [(key, rec["location"]) for key, rec in records] == [("t9", "payload:p1")]
    assert d.scan_payload(Payload(state, "partial", "timeout", None)) == []


def test_a_judges_explanation_is_masked_before_it_is_reported() -> None:
    d = _driver(judge={**JUDGE, "name": "policy"})
    (judge,) = SafetySettings(judge={**JUDGE, "name": "policy"}).all_judges()
    item = ContentItem("x", "output", "b", "t1", "s1")
    ev = Evaluation("policy", 0.9, "violation", f"it leaks {AWS_KEY}")
    key, rec = d.evaluation(item, ev, judge)
    assert key == "t1" and rec["flagged"] and rec["severity"] == "high"
    assert AWS_KEY not in str(rec) and "[aws_access_key_id]" in str(rec)
