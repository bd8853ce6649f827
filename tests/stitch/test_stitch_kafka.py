"""Chunked payloads from Kafka: pieces across many messages, shuffled and duplicated, a
worker restart mid-payload, a payload larger than the broker's message limit."""

from __future__ import annotations

import hashlib
import random
import urllib.request
from pathlib import Path

import orjson
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import WorkerProc, consume_until, produce, wait_until
from spanwatch.otel.chunking import ChunkingSpanExporter
from spanwatch.pipeline.config import TopicSettings
from tests.support.otel import ToMessages

pytestmark = pytest.mark.broker
CONFIG = """
metrics: {enabled: false}
tokens: {enabled: false}
stitch: {forward_content: true, max_content_bytes: 200000, timeout: 10m}
worker: {stats_interval_s: 0.5}
"""


def _messages(text: str) -> list[bytes]:
    sink = ToMessages()
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-app"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            ChunkingSpanExporter(
                sink,
                max_attribute_bytes=8192,
                piece_bytes=32 * 1024,
                max_export_bytes=200_000,
                encoding="base64",
            )
        )
    )  # byte pieces: split inside multi-byte characters too
    with provider.get_tracer("t").start_as_current_span("chat m") as sp:
        sp.set_attribute("gen_ai.operation.name", "chat")
        sp.set_attribute("gen_ai.output.messages", text)
    return sink.messages


def test_payload_bigger_than_the_broker_limit_survives_a_restart(tmp_path: Path) -> None:
    rng = random.Random(4)
    # ~1.3 MB of mixed-script text: over the 1 MB message limit, in ~40 pieces
    text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz 模型流式输出") for _ in range(900_000))
    msgs = _messages(text)
    assert len(text.encode()) > 1_000_000
    assert len(msgs) >= 6 and max(map(len, msgs)) < 400_000
    owner, carriers = msgs[0], msgs[1:]
    shuffled = carriers[:]
    rng.shuffle(shuffled)
    order = [shuffled[0], owner, *shuffled[1:], shuffled[0]]  # out of order, one retried
    config = tmp_path / "sw.yaml"
    config.write_text(CONFIG)
    half = len(order) // 2
    with EmbeddedBroker(
        topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
    ) as b:
        first = WorkerProc(b.bootstrap, tmp_path / "a", app_id="spanwatch", config=config)
        first.start()
        produce(b.bootstrap, "otlp_spans", [(b"k", m) for m in order[:half]])
        # every piece in the stitch table, every offset committed
        first.wait_drained(60, produced={"otlp_spans": half})
        assert first.metric("spanwatch_stitch_payloads_held") == 1
        first.stop()  # restart mid-payload
        second = WorkerProc(b.bootstrap, tmp_path / "b", app_id="spanwatch", config=config)
        try:
            second.start(wait_ready=90)
            produce(b.bootstrap, "otlp_spans", [(b"k", m) for m in order[half:]])
            got = consume_until(
                b.bootstrap, ["spanwatch.payloads"], lambda ms: len(ms) >= 1, timeout=90
            )
            second.wait_drained(60, produced={"otlp_spans": len(order)})  # the retried piece too
            counters = (
                urllib.request.urlopen(f"http://127.0.0.1:{second.metrics_port}/metrics")
                .read()
                .decode()
            )
            second_done = int(
                second.metric("spanwatch_stitch_events_total", event="payloads_complete")
            )
        finally:
            second.stop()
    assert second_done == 1  # emitted once
    rec = orjson.loads(got[0].value())
    assert rec["status"] == "complete" and rec["reason"] is None and rec["missing"] == []
    assert rec["role"] == "output"
    # the retried message came after the end: its pieces were recognized, not a new payload
    assert 'spanwatch_stitch_events_total{event="pieces_after_done"}' in counters
    assert "partial" not in counters
    assert rec["size_bytes"] == len(text.encode())
    assert rec["digest"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert rec["content_truncated"] and text.startswith(rec["content"])


TAKEOVER_CONFIG = """
metrics: {enabled: false}
tokens: {enabled: false}
stitch: {timeout: 8s, tick_interval_s: 0.5}
"""


def test_a_payload_taken_over_mid_way_still_times_out(tmp_path: Path) -> None:
    """The successor reloads the incomplete payloads of its partitions from the restored
    table: one that never completes is emitted as partial (timeout), once."""
    rng = random.Random(8)
    text = "".join(rng.choice("abcdefghij 模型") for _ in range(300_000))
    msgs = _messages(text)
    owner, carriers = msgs[0], msgs[1:]
    sent = [owner, *carriers[: len(carriers) // 2]]  # the rest never comes
    config = tmp_path / "sw.yaml"
    config.write_text(TAKEOVER_CONFIG)
    with EmbeddedBroker(
        topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
    ) as b:
        first = WorkerProc(b.bootstrap, tmp_path / "a", app_id="sw-stitch", config=config)
        first.start(90)
        produce(b.bootstrap, "otlp_spans", [(b"k", m) for m in sent])
        first.until(
            lambda st: (
                st["ready"]
                and all(p["lag"] == 0 for p in st["partitions"] if p["topic"] == "otlp_spans")
            ),
            60,
            "done with the input",
        )
        assert wait_until(lambda: first.metric("spanwatch_stitch_payloads_held") >= 1, 60), (
            "the payload never reached the stitch table"
        )
        first.stop()  # graceful: offsets committed, the table's changelog flushed
        second = WorkerProc(b.bootstrap, tmp_path / "b", app_id="sw-stitch", config=config)
        try:
            second.start(90)
            got = consume_until(
                b.bootstrap, ["spanwatch.payloads"], lambda ms: len(ms) >= 1, timeout=60
            )
            assert got, "the taken-over payload was never timed out"
            assert wait_until(lambda: second.metric("spanwatch_stitch_payloads_held") == 0, 30)
            # the input was committed by the first worker: the second re-read nothing
            assert second.metric("spanwatch_ingest_messages_total") == 0
            assert second.metric("spanwatch_stitch_events_total", event="partial_timeout") == 1
        finally:
            second.stop()
    assert len(got) == 1
    rec = orjson.loads(got[0].value())
    assert rec["status"] == "partial" and rec["reason"] == "timeout" and rec["missing"]
