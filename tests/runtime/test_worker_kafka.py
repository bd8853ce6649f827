"""The ingest agent from Kafka: a real Tansu broker and a real ``spanwatch worker`` process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.traffic import TrafficGenerator
from tests.builders import span, traces
from tests.support.cluster import WorkerProc, consume_until, produce, span_records
from tests.support.otlp_json import otlp_json, per_span_messages

pytestmark = pytest.mark.broker
MARKER = {"gen_ai.request.model": "after-bad-input"}  # stamped now: timestamps are bounded


@pytest.mark.parametrize(
    "config",
    [
        "",  # the window agents publish the records with their batches of source messages
        "metrics: {enabled: false}\ntokens: {enabled: false}\n",  # the ingest agent does
    ],
    ids=["published-with-batches", "published-by-ingest"],
)
def test_worker_normalizes_every_encoding_and_dead_letters_the_rest(
    broker: EmbeddedBroker, tmp_path: Path, config: str
) -> None:
    gen = TrafficGenerator(seed=11)
    batches = [
        b.traces_data() for b, _ in zip(gen.batches(200, time.time_ns()), range(3), strict=False)
    ]
    expected_spans = sum(
        len(ss.spans) for b in batches for rs in b.resource_spans for ss in rs.scope_spans
    )
    singles = per_span_messages(batches[2])
    values: list[bytes | tuple[bytes | None, bytes]] = [
        batches[0].SerializeToString(),  # otlp_proto batch, empty key
        otlp_json(batches[1]),  # otlp_json batch
        *[
            (
                m.resource_spans[0].scope_spans[0].spans[0].trace_id.hex().encode(),
                m.SerializeToString(),
            )
            for m in singles
        ],  # one span per message, trace-id key
        b"\x0a\xff\xff\xff\x0f corrupt",  # corrupt protobuf
        b'{"resourceSpans": [',  # truncated JSON
    ]
    cfg = tmp_path / "spanwatch.yaml"
    cfg.write_text(config)
    worker = WorkerProc(broker.bootstrap, tmp_path, config=cfg).start()
    try:
        produce(broker.bootstrap, "otlp_spans", values)
        got = consume_until(
            broker.bootstrap,
            ["spanwatch.spans", "spanwatch.deadletter"],
            lambda ms: (
                len(span_records(ms)) >= expected_spans
                and sum(m.topic() == "spanwatch.deadletter" for m in ms) >= 2
            ),
            timeout=90,
        )
        # the worker survived the bad input and still processes new messages
        produce(
            broker.bootstrap,
            "otlp_spans",
            [
                traces(
                    span(MARKER, start=time.time_ns() - 10**9, end=time.time_ns())
                ).SerializeToString()
            ],
        )
        later = consume_until(
            broker.bootstrap,
            ["spanwatch.spans"],
            lambda ms: any(r.request_model == "after-bad-input" for r in span_records(ms)),
            timeout=60,
        )
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        worker.stop()
    records = span_records(got)
    assert len(records) == expected_spans
    assert len({(r.trace_id, r.span_id) for r in records}) == expected_spans
    assert {r.layer for r in records} >= {"gateway", "agent", "app", "tool", "model-server"}
    dead = [m for m in got if m.topic() == "spanwatch.deadletter"]
    reasons = sorted(dict(m.headers())["spanwatch.reason"] for m in dead)
    assert reasons == [b"bad_json", b"bad_protobuf"]
    for m in dead:
        h = dict(m.headers())
        assert h["spanwatch.source.topic"] == b"otlp_spans"
        assert int(h["spanwatch.source.offset"]) >= 0
    assert any(r.request_model == "after-bad-input" for r in span_records(later))
