"""Chunked payloads: the producing exporter, piece extraction and reassembly (no broker)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanwatch.otel.chunking import CHUNKED, ChunkingSpanExporter
from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.ingest.otlp import decode
from spanwatch.pipeline.stitch.chunks import (
    Payload,
    PayloadState,
    Piece,
    assemble,
    make_pieces,
    split_utf8,
)

TEXT = "模型输出 streams 🚀 " * 3000 + "end"


def pieces_of(text: str, encoding: str, piece_bytes: int = 4096) -> list[Piece]:
    attrs = make_pieces(text, "p1", "output", piece_bytes=piece_bytes, encoding=encoding)
    return [
        Piece(
            "p1",
            "t" * 32,
            "s" * 16,
            "output",
            int(a["gen_ai.content.chunk.index"]),
            a.get("gen_ai.content.chunk.count"),
            encoding,  # type: ignore[arg-type]
            _raw(a, encoding),
            a.get("gen_ai.content.digest"),
        )  # type: ignore[arg-type]
        for a in attrs
    ]


def _raw(a: dict[str, object], encoding: str) -> bytes:
    import base64

    data = str(a["gen_ai.content.chunk.data"])
    return data.encode() if encoding == "utf-8" else base64.b64decode(data)


def run(pieces: list[Piece], reason: str | None = None) -> Payload:
    state = PayloadState.start(pieces[0], 0)
    held = {}
    for p in pieces:
        if state.add(p) == "new":
            held[p.index] = p.data
    return assemble(state, held, None if state.complete else (reason or "timeout"))


@pytest.mark.parametrize("encoding", ["utf-8", "base64", "gzip+base64"])
def test_round_trip_in_every_encoding(encoding: str) -> None:
    pieces = pieces_of(TEXT, encoding)
    random.Random(1).shuffle(pieces)
    payload = run(pieces)
    assert payload.status == "complete" and payload.text == TEXT and payload.reason is None


def test_utf8_pieces_never_split_a_character_but_base64_may() -> None:
    for part in split_utf8("é🚀" * 1000, 7):
        part.decode("utf-8")  # every utf-8 piece is valid on its own
    raw = [p.data for p in pieces_of("é🚀" * 1000, "base64", 7)]
    assert any(_invalid(r) for r in raw)  # split inside characters ...
    assert run(pieces_of("é🚀" * 1000, "base64", 7)).text == "é🚀" * 1000  # ... and rejoined


def _invalid(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@settings(max_examples=60, deadline=None)
@given(
    st.text(min_size=1, max_size=3000),
    st.sampled_from(["utf-8", "base64", "gzip+base64"]),
    st.integers(1, 50),
    st.randoms(use_true_random=False),
    st.data(),
)
def test_shuffled_duplicated_and_missing_pieces(
    text: str, encoding: str, size: int, rnd: random.Random, data: st.DataObject
) -> None:
    pieces = pieces_of(text, encoding, size)
    dup = pieces + [rnd.choice(pieces) for _ in range(data.draw(st.integers(0, 5)))]
    rnd.shuffle(dup)
    drop = data.draw(st.sets(st.integers(0, len(pieces) - 1), max_size=3))
    kept = [p for p in dup if p.index not in drop]
    if not kept:
        return
    payload = run(kept)
    if not drop:
        assert payload.status == "complete" and payload.text == text
    else:
        assert payload.status == "partial"
        missing = {i for lo, hi in payload.state.missing() for i in range(lo, hi + 1)}
        if payload.state.count is not None:
            assert missing == drop
        else:  # piece 0 (with the count) was lost: trailing losses cannot be known
            top = max(payload.state.received)
            assert missing == {i for i in drop if i < top}


def test_digest_mismatch_and_conflicting_duplicates() -> None:
    pieces = pieces_of(TEXT, "utf-8")
    forged = Piece(
        "p1",
        "t" * 32,
        "s" * 16,
        "output",
        pieces[1].index,
        None,
        "utf-8",
        b"X" * len(pieces[1].data),
    )  # a retry that carries different data
    state = PayloadState.start(pieces[0], 0)
    held = {}
    for p in [forged, *pieces]:
        if state.add(p) == "new":
            held[p.index] = p.data
    assert state.conflicts == [1]
    payload = assemble(state, held)
    assert payload.status == "partial" and payload.reason == "digest_mismatch"
    rec = payload.record(forward_content=False, max_content_bytes=100)
    assert rec["conflicting_indexes"] == [1] and "content" not in rec
    assert TEXT[:50] not in repr(payload)


def test_record_cuts_forwarded_content_at_the_limit() -> None:
    payload = run(pieces_of(TEXT, "utf-8"))
    rec = payload.record(forward_content=True, max_content_bytes=1000)
    assert rec["content_truncated"] and len(rec["content"].encode()) <= 1000
    assert rec["status"] == "complete" and rec["missing"] == []


def test_state_round_trip() -> None:
    pieces = pieces_of(TEXT, "utf-8")
    state = PayloadState.start(pieces[0], 5)
    for p in pieces[:3]:
        state.add(p)
    assert PayloadState.from_dict(state.to_dict()) == state
    assert Piece.from_dict(pieces[2].to_dict()) == pieces[2]


def test_exporter_splits_big_content_into_separate_small_batches() -> None:
    memory = InMemorySpanExporter()
    exported: list[int] = []

    class Recorder(InMemorySpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            exported.append(len(encode_spans(spans).SerializeToString()))
            return memory.export(spans)

    provider = TracerProvider(resource=Resource.create({"service.name": "chat-app"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            ChunkingSpanExporter(
                Recorder(), max_attribute_bytes=16_384, piece_bytes=64 * 1024, encoding="base64"
            )
        )
    )
    big = "对话内容 " * 400_000  # ~5 MB of UTF-8, far over a collector's 1 MB message limit
    with provider.get_tracer("t").start_as_current_span("chat m") as sp:
        sp.set_attribute("gen_ai.operation.name", "chat")
        sp.set_attribute("gen_ai.request.model", "m")
        sp.set_attribute("gen_ai.output.messages", big)
        sp.set_attribute("gen_ai.input.messages", "short prompt")
    spans = memory.get_finished_spans()
    assert len(exported) > 3 and max(exported) < 1_000_000
    owner = next(s for s in spans if s.name == "chat m")
    assert "gen_ai.output.messages" not in owner.attributes
    assert list(owner.attributes[CHUNKED]) == [
        f"{owner.context.span_id:016x}:gen_ai.output.messages"
    ]
    result = ingest_message(encode_spans(spans).SerializeToString())
    [rec] = result.spans  # carrier spans are not records
    assert any(c.kind == "chunk" and c.role == "output" for c in rec.content)
    assert any(c.kind == "inline" and c.role == "input" for c in rec.content)
    assert run(sorted(result.pieces, key=lambda p: -p.index)).text == big
    assert all(p.span_id == f"{owner.context.span_id:016x}" for p in result.pieces)
    assert len(decode(encode_spans(spans).SerializeToString()).spans) == len(spans)


def test_split_utf8_with_a_budget_smaller_than_a_character() -> None:
    parts = split_utf8("a🚀b", 2)
    assert parts == [b"a", "🚀".encode(), b"b"]
