"""A trace split across a change of owner joins as it would in one worker: the successor reads
back the messages before its first offset and joins their traces again, so a deep agent loop
whose inner half was counted by the previous owner is still caught."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import WorkerProc, consume_until
from spanwatch.pipeline.config import TopicSettings
from tests.builders import span, traces

pytestmark = pytest.mark.broker
NS = 10**9
TRACES = 3
CONFIG = """
metrics: {{windows: ["10s"], idle_timeout: 5s, trace_rejoin_messages: {rejoin}}}
tokens:
  trace_budgets: {{max_agent_depth: 2}}
safety: {{enabled: false}}
anomaly: {{enabled: false}}
alerting: {{enabled: false}}
worker: {{stats_interval_s: 0.5}}
"""
AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "qwen-max",
    "gen_ai.usage.input_tokens": 10,
    "gen_ai.usage.output_tokens": 5,
}


def split_traces(now: int) -> tuple[bytes, bytes]:
    """Three agents nested in each trace (depth 3): the inner agent and its call in one
    message, the middle and outer agents (which end later) in the next, as a batching
    exporter sends them."""
    first, second = [], []
    for _ in range(TRACES):
        trace = os.urandom(16)
        outer, middle, inner, call = (os.urandom(8) for _ in range(4))
        ids = {"trace_id": trace}
        first.append(span(CHAT, span_id=call, parent=inner, start=now, end=now + NS, **ids))
        first.append(span(AGENT, span_id=inner, parent=middle, start=now, end=now + NS, **ids))
        second.append(span(AGENT, span_id=middle, parent=outer, start=now, end=now + NS, **ids))
        second.append(span(AGENT, span_id=outer, start=now, end=now + 2 * NS, **ids))
    return (
        traces(*first, service="agent-app").SerializeToString(),
        traces(*second, service="agent-app").SerializeToString(),
    )


def _send(bootstrap: str, value: bytes) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1})
    p.produce("otlp_spans", value, partition=0)
    assert p.flush(30) == 0


def _depth_events(messages: list[Any]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        rec = orjson.loads(m.value())
        if rec.get("type") == "black_hole" and rec.get("budget") == "max_agent_depth":
            out.append(rec)
    return out


@pytest.mark.parametrize("rejoin", [1000, 0], ids=["rejoined", "not_rejoined"])
def test_a_trace_split_across_a_takeover_is_joined_whole(tmp_path: Path, rejoin: int) -> None:
    with EmbeddedBroker(
        topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
    ) as broker:
        config = tmp_path / "sw.yaml"
        config.write_text(CONFIG.format(rejoin=rejoin))
        first, second = split_traces(time.time_ns() - 2 * NS)
        a = WorkerProc(broker.bootstrap, tmp_path / "a", app_id="sw-rejoin", config=config)
        a.start(90)
        try:
            _send(broker.bootstrap, first)
            a.wait_drained(60, produced={"otlp_spans": 1})  # counted and committed by a
        finally:
            a.stop()
        b = WorkerProc(broker.bootstrap, tmp_path / "b", app_id="sw-rejoin", config=config)
        b.start(90)
        try:
            _send(broker.bootstrap, second)
            b.wait_drained(60, produced={"otlp_spans": 2})
            got = consume_until(
                broker.bootstrap,
                ["spanwatch.tokens"],
                lambda ms: len(_depth_events(ms)) >= TRACES,
                timeout=30 if rejoin else 5,  # drained: any event is out already
            )
            rejoined = b.metric("spanwatch_trace_rejoined_messages_total")
        finally:
            b.stop()
    events = _depth_events(got)
    if rejoin:
        assert rejoined == 1  # a's one message, read back by b
        assert len(events) == TRACES and {e["value"] for e in events} == {3}
    else:  # the loss this fixes: b joins only the outer half, depth 2 is within budget
        assert rejoined == 0 and events == []
