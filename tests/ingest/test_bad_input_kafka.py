"""Bad input beside good traffic, through a real worker: every kind of bad message becomes a
dead letter (or a flagged record), no good span is lost or counted late, and the worker keeps
running without a traceback. Then the same worker at DEBUG: no planted secret in its log.

The kinds: a span from the year 2200 and one from 1970 (a timestamp nobody can place), a host
clock ten minutes ahead (moved back, counted), OTLP/JSON with a timestamp beyond 64 bits, a
10 MB message (beyond what a producer can send back as a dead letter), corrupt protobuf,
attributes of the wrong type and out-of-range integers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import TANSU, WorkerProc, consume_until, span_records, wait_until
from spanwatch.devtools.traffic import TrafficGenerator
from spanwatch.devtools.webhook import Webhook
from spanwatch.pipeline.config import TopicSettings
from tests.builders import span, traces
from tests.support.load import stamped_message, token_truth
from tests.support.otlp_json import otlp_json

pytestmark = pytest.mark.broker
NS = 10**9
YEAR_2200_NS = 7_258_118_400 * NS
CONFIG = """
metrics:
  windows: ["10s"]
  allowed_lateness: 2s
  idle_timeout: 5s
anomaly: {{enabled: false}}
stitch: {{enabled: false}}
alerting: {{rules: ["{rules}"], tick_interval_s: 0.5}}
worker: {{stats_interval_s: 1}}
"""
RULES = """
groups:
  - name: safety
    rules:
      - alert: PiiInCompletion
        kind: finding
        kinds: [pii]
        roles: [output]
"""
ROUTING = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
receivers:
  - name: hook
    urls: ["json://127.0.0.1:{port}/down/{token}"]
"""


def llm_call(model: str, end_ns: int, tokens: tuple[Any, Any] = (100, 20), **attrs: Any) -> bytes:
    """One chat call of ``model`` ending at ``end_ns`` (2 s long), as protobuf."""
    inp, out = tokens
    call = span(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out,
            **attrs,
        },
        span_id=os.urandom(8),
        trace_id=os.urandom(16),
        start=end_ns - 2 * NS,
        end=end_ns,
    )
    return bytes(traces(call, service="bad-input-app").SerializeToString())


def json_beyond_64_bits(model: str) -> bytes:
    """OTLP/JSON whose end time does not fit 64 bits, and whose token count does not either."""
    doc = json.loads(otlp_json(traces_of(llm_call(model, time.time_ns()))))
    sp = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    sp["endTimeUnixNano"] = str(2**64 + 5)
    for kv in sp["attributes"]:
        if kv["key"] == "gen_ai.usage.output_tokens":
            kv["value"] = {"intValue": str(10**30)}
    return json.dumps(doc).encode()


def traces_of(value: bytes) -> Any:
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    data = TracesData()
    data.ParseFromString(value)
    return data


def bad_messages() -> dict[str, bytes]:
    now = time.time_ns()
    return {
        "year_2200": llm_call("from-2200", YEAR_2200_NS),
        "year_1970": llm_call("from-1970", 5 * NS),
        "json_beyond_64_bits": json_beyond_64_bits("beyond-64-bits"),
        "ten_megabytes": b"\x0a\xff" + os.urandom(10 * 1024 * 1024),
        "corrupt_protobuf": llm_call("corrupt", now)[:-7],
        "wrong_types": llm_call("wrong-types", now, ("many", [1, 2]), **{"gen_ai.system": 3}),
    }


def _produce(bootstrap: str, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, **TANSU.producer, "message.max.bytes": 12 << 20})
    for i, value in enumerate(values):
        p.produce("otlp_spans", value, partition=i % 4)
        p.poll(0)
    assert p.flush(60) == 0


def _token_sums(messages: list[Any]) -> dict[tuple[str, str], int]:
    sums: dict[tuple[str, str], int] = {}
    for m in messages:
        if m.topic() != "spanwatch.tokens":
            continue
        rec = orjson.loads(m.value())
        if rec.get("type") != "window":
            continue
        key = (rec["entity"]["kind"], rec["entity"]["id"])
        if key[0] in ("model", "user"):
            sums[key] = sums.get(key, 0) + rec["total_tokens"]
    return sums


def _setup(tmp_path: Path, hook: Webhook, token: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(RULES)
    (rules / "am.yaml").write_text(ROUTING.format(port=hook.port, token=token))
    config = tmp_path / "sw.yaml"
    config.write_text(CONFIG.format(rules=rules))
    return config


def test_bad_input_beside_good_traffic(tmp_path: Path) -> None:
    gen = TrafficGenerator(seed=11, runaway_every=0)
    with (
        Webhook() as hook,
        EmbeddedBroker(
            topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
        ) as broker,
    ):
        config = _setup(tmp_path, hook, "not-the-point")
        w = WorkerProc(broker.bootstrap, tmp_path / "w", app_id="sw-bad", config=config).start(90)
        try:
            good = [stamped_message(gen, time.time_ns()) for _ in range(12)]
            skewed = llm_call("ten-minutes-ahead", time.time_ns() + 600 * NS, (300, 30))
            bad = bad_messages()
            # the future first, on every partition: each good span after it must still count
            _produce(broker.bootstrap, [bad["year_2200"]] * 4 + [skewed])
            mixed = [v for pair in zip(good, [*bad.values()] * 2, strict=True) for v in pair]
            _produce(broker.bootstrap, mixed)
            truth = token_truth([*good, skewed])
            got = consume_until(
                broker.bootstrap,
                ["spanwatch.tokens", "spanwatch.deadletter", "spanwatch.spans"],
                lambda ms: _token_sums(ms) == truth,
                timeout=120,
            )
            w.wait_drained(60)
            late = w.metric("spanwatch_late_spans_total")
            skew = {
                outcome: w.metric("spanwatch_ingest_clock_skew_spans_total", outcome=outcome)
                for outcome in ("moved_back", "dead_letter")
            }
            status = w.status()
        finally:
            w.stop()
    assert _token_sums(got) == truth  # every good token, once; nothing of the bad ones
    assert late == 0  # no span from the future moved a watermark
    assert skew == {"moved_back": 1, "dead_letter": 4 + 2 * 2}
    dead = [m for m in got if m.topic() == "spanwatch.deadletter"]
    reasons: dict[str, int] = {}
    for m in dead:
        headers = dict(m.headers() or [])
        reason = headers["spanwatch.reason"].decode()
        reasons[reason] = reasons.get(reason, 0) + 1
        assert len(m.value()) <= 512 * 1024
        if reason == "bad_protobuf" and int(headers.get("spanwatch.original-size", b"0")) > 1e7:
            assert headers["spanwatch.truncated"] == b"true"
    assert reasons["timestamp_out_of_range"] == 4 + 2 * 2  # 2200 (x4, then x2) and 1970 (x2)
    assert reasons["bad_protobuf"] == 2 * 2  # 10 MB of noise and a cut message, twice each
    assert sum(reasons.values()) == len(dead) == 12, reasons
    records = {r.request_model: r for r in span_records(got)}
    assert "clock_skew:future" in records["ten-minutes-ahead"].issues
    assert "missing:timestamp" in records["beyond-64-bits"].issues
    assert "out_of_range:gen_ai.usage.output_tokens" in records["beyond-64-bits"].issues
    assert records["wrong-types"].input_tokens is None
    assert "from-2200" not in records and "from-1970" not in records
    assert status is not None and status["ready"]
    assert "Traceback" not in w.log()


PHONE = "13987654321"
API_KEY = "sk-proj-Zq8RkT2vXb4NcM7pLw9sHd3Fg6Jy1Ua5Ke0Io2Tr8Yx"
TOKEN = "Tk7hQ2mV9xWc4bN8pRz3"


def test_no_secret_in_a_debug_log(tmp_path: Path) -> None:
    with (
        Webhook(statuses=[503, 200]) as hook,
        EmbeddedBroker(
            topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
        ) as broker,
    ):
        config = _setup(tmp_path, hook, TOKEN)
        w = WorkerProc(
            broker.bootstrap,
            tmp_path / "w",
            app_id="sw-secrets",
            config=config,
            extra=("--loglevel", "debug"),
        ).start(90)
        try:
            now = time.time_ns()
            leaking = llm_call(
                "qwen-max",
                now,
                **{
                    "gen_ai.input.messages": f"my key is {API_KEY}",
                    "gen_ai.output.messages": f"您的手机号是{PHONE}，已登记",
                },
            )
            garbage = b"\xff\xfe" + f"{PHONE} {API_KEY}".encode() * 3
            bad_json = f'{{"resourceSpans": [{PHONE}, "{API_KEY}"'.encode()
            _produce(broker.bootstrap, [leaking, garbage, bad_json, leaking[:-3] + b"\xff"])
            assert wait_until(lambda: len(hook.answered()) == 1, 120), hook.requests
            w.wait_drained(60)
            dead = w.metric("spanwatch_deadletters_total")
        finally:
            w.stop()
    log = w.log()
    assert dead == 3
    assert " DEBUG " in log or "[D]" in log or "DEBUG" in log  # it did run at debug level
    for planted in (TOKEN, PHONE, API_KEY, API_KEY[:20]):
        assert planted not in log, f"{planted[:6]}... in the worker's log"
    assert "Traceback" not in log
