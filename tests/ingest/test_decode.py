"""What collectors write: encodings, batch shapes, keys, detection; bad input -> dead letters."""

from __future__ import annotations

import gzip
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanwatch.pipeline.ingest.deadletter import SourceRef
from spanwatch.pipeline.ingest.message import IngestOptions, ingest_message
from spanwatch.pipeline.ingest.otlp import Encoding, decode, detect_encoding
from tests.builders import span, traces
from tests.support.otlp_json import otlp_json, per_span_messages, rotel_json

ATTRS = {
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 7,
    "gen_ai.usage.output_tokens": 3,
    "gen_ai.response.time_to_first_chunk": 0.25,
}


def _batch() -> bytes:
    return traces(span(ATTRS), span(ATTRS, span_id=b"\x01" * 8)).SerializeToString()


def _records(value: bytes, **kw: object) -> list[dict[str, object]]:
    result = ingest_message(value, **kw)  # type: ignore[arg-type]
    assert not result.dead_letters, result.dead_letters
    return [s.to_dict() for s in result.spans]


def test_export_request_and_traces_data_are_the_same_bytes() -> None:
    req = ExportTraceServiceRequest()
    req.ParseFromString(_batch())
    assert _records(req.SerializeToString()) == _records(_batch())


@pytest.mark.parametrize("encode", [otlp_json, rotel_json], ids=["otlp_json", "rotel_json"])
def test_json_encodings_give_the_same_records_as_protobuf(encode) -> None:  # type: ignore[no-untyped-def]
    data = traces(span(ATTRS), span(ATTRS, span_id=b"\x01" * 8))
    assert _records(encode(data)) == _records(data.SerializeToString())


def test_json_lines_and_snake_case_keys() -> None:
    data = traces(span(ATTRS))
    doc = json.loads(otlp_json(data))
    lines = (json.dumps(doc) + "\n" + json.dumps(doc) + "\n").encode()
    assert len(_records(lines)) == 2
    snake = (
        json.dumps(doc)
        .replace("resourceSpans", "resource_spans")
        .replace("scopeSpans", "scope_spans")
        .replace("traceId", "trace_id")
        .replace("spanId", "span_id")
    )
    assert _records(snake.encode()) == _records(data.SerializeToString())


def test_one_span_per_message() -> None:
    data = traces(span(ATTRS), span(ATTRS, span_id=b"\x01" * 8))
    singles = [_records(m.SerializeToString()) for m in per_span_messages(data)]
    assert [r for recs in singles for r in recs] == _records(data.SerializeToString())


@pytest.mark.parametrize(
    ("value", "headers", "expected"),
    [
        (b'{"resourceSpans":[]}', None, Encoding.OTLP_JSON),
        (b"  \t[ ]", None, Encoding.OTLP_JSON),
        (b"\x0a\x02\x0a\x00", None, Encoding.OTLP_PROTO),
        (b"{}", {"content-type": b"application/x-protobuf"}, Encoding.OTLP_PROTO),
        (b"\x0a\x00", {"content-type": b"application/json; charset=utf-8"}, Encoding.OTLP_JSON),
    ],
)
def test_detect_encoding(
    value: bytes, headers: dict[str, bytes] | None, expected: Encoding
) -> None:
    assert detect_encoding(value, headers) is expected


def test_sniffing_fooled_by_a_length_byte_still_decodes() -> None:
    # A TracesData whose first resource-spans length is 123 starts with b"\n{".
    for pad in range(200):
        data = traces(span({"gen_ai.request.model": "m" * (pad + 1)}), service=None)
        raw = data.SerializeToString()
        if raw[1:2] in (b"{", b"["):
            assert _records(raw)
            return
    pytest.fail("no padding produced an ambiguous first byte")


def test_configuration_can_force_the_encoding() -> None:
    forced = IngestOptions(encoding=Encoding.OTLP_JSON)
    result = ingest_message(_batch(), options=forced)
    assert [d.reason for d in result.dead_letters] == ["bad_json"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (b"\x0a\xff\xff\xff\x0f garbage", "bad_protobuf"),
        (b'{"resourceSpans": [', "bad_json"),
        (b'{"hello": "world"}', "bad_otlp_json"),
        (b"[1, 2]", "bad_otlp_json"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": "nope"}]}]}', "bad_otlp_json"),
        (b'{"resourceSpans": []}', "no_spans"),
        (gzip.compress(b'{"resourceSpans": []}'), "bad_protobuf"),
        (b"\xff\xfe{", "bad_protobuf"),
    ],
)
def test_undecodable_messages_become_dead_letters(value: bytes, reason: str) -> None:
    src = SourceRef("otlp_spans", 3, 42)
    result = ingest_message(value, source=src, key=b"k")
    assert result.spans == []
    [dl] = result.dead_letters
    assert dl.reason == reason
    assert dl.value == value and dl.key == b"k"
    headers = dict(dl.headers())
    assert headers["spanwatch.reason"] == reason.encode()
    assert headers["spanwatch.source.partition"] == b"3"
    assert headers["spanwatch.source.offset"] == b"42"


def test_truncated_protobuf_is_a_dead_letter_at_every_cut() -> None:
    raw = _batch()
    for cut in range(1, len(raw) - 1, 7):
        result = ingest_message(raw[:cut])
        assert result.dead_letters or result.spans, cut


def test_spans_without_ids_are_dead_lettered_alone() -> None:
    good = span(ATTRS)
    no_trace = span(ATTRS, trace_id=b"")
    zero_span = span(ATTRS, span_id=bytes(8))
    result = ingest_message(traces(good, no_trace, zero_span).SerializeToString())
    assert len(result.spans) == 1 and result.rejected == 2
    [dl] = result.dead_letters
    assert dl.scope == "spans" and dl.reason == "rejected_spans"
    # the dead letter holds only the rejected spans: replaying it cannot duplicate the good one
    again = decode(dl.value)
    assert len(again.spans) == 0 and len(again.rejected) == 2


def test_oversized_message_keeps_a_snippet_and_its_size() -> None:
    big = _batch() + b"\x00" * 5000
    result = ingest_message(big, options=IngestOptions(max_message_bytes=2048))
    [dl] = result.dead_letters
    assert dl.reason == "oversized" and dl.original_size == len(big)
    assert len(dl.value) <= 64 * 1024
    assert ("spanwatch.original-size", str(len(big)).encode()) in dl.headers()


def test_dead_letter_repr_never_shows_the_payload() -> None:
    secret = b'{"resourceSpans": [ sk-live-1234567890'
    [dl] = ingest_message(secret).dead_letters
    assert b"sk-live" not in repr(dl).encode()


def test_a_dead_letter_is_always_small_enough_to_send() -> None:
    """A 10 MB message under max_message_bytes that fails to decode keeps its whole value in
    the dead letter; the sender cuts it below the producer's limit, keeping its size."""
    big = b"\x0a\xff" + b"\x07" * (10 * 1024 * 1024)
    [dl] = ingest_message(big).dead_letters
    assert dl.reason == "bad_protobuf" and len(dl.value) == len(big)
    cut = dl.bounded(512 * 1024)
    assert len(cut.value) == 512 * 1024 and cut.original_size == len(big)
    headers = dict(cut.headers())
    assert headers["spanwatch.truncated"] == b"true"
    assert headers["spanwatch.original-size"] == str(len(big)).encode()
    assert dl.bounded(len(big)) is dl  # small enough already: unchanged
    bare = cut.without_value()
    assert (
        bare.value == b""
        and dict(bare.headers())["spanwatch.original-size"] == headers["spanwatch.original-size"]
    )


def test_an_error_detail_never_quotes_the_input() -> None:
    from spanwatch.pipeline.common.errors import describe_error

    try:
        int("13912345678x")
    except ValueError as exc:
        line = describe_error(exc)
    assert "1391234" not in line and line.startswith("ValueError: invalid literal")
