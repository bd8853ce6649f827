"""One count per LLM call when a framework's and the client's instrumentation both report it;
TTFT from OpenLLMetry's streamed-chunk events (real recordings: tests/testdata)."""

from __future__ import annotations

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from spanwatch.pipeline.ingest.dedupe import mark_duplicates
from spanwatch.pipeline.ingest.message import IngestOptions, ingest_message
from spanwatch.pipeline.ingest.normalize import NormalizeOptions
from spanwatch.pipeline.ingest.spans import LlmSpan
from spanwatch.pipeline.tokens.burn import counted_calls
from tests.builders import T0, llm_span, span, traces

MS = 1_000_000


def llm(
    span_id: str,
    scope: str,
    *,
    service: str = "chat-app",
    start: int = 0,
    end: int = 900 * MS,
    model: str = "gpt-4o-mini",
    tokens: tuple[int, int] = (23, 14),
    trace: str = "t1",
) -> LlmSpan:
    return llm_span(
        span_id,
        trace_id=trace,
        service=service,
        start_ns=T0 + start,
        end_ns=T0 + end,
        duration_s=(end - start) / 1e9,
        request_model=model,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        instrumentation=scope,
    )


CLIENT, FRAMEWORK = "opentelemetry.util.genai.handler", "openinference.instrumentation.langchain"


def test_framework_span_repeating_a_client_call_is_marked_and_not_counted() -> None:
    client = llm(
        "c1", CLIENT, start=10 * MS, end=880 * MS, model="gpt-4o-mini-2024-08-06", trace="t2"
    )
    framework = llm("f1", FRAMEWORK)  # another trace: the tracers shared no context
    assert mark_duplicates([framework, client]) == 1
    assert framework.duplicate_of == "c1" and client.duplicate_of is None
    assert counted_calls([framework, client]) == [client]


def test_different_calls_are_not_duplicates() -> None:
    client = llm("c1", CLIENT)
    for other in (
        llm("f1", FRAMEWORK, service="other-app"),
        llm("f2", FRAMEWORK, tokens=(23, 15)),
        llm("f3", FRAMEWORK, start=2_000 * MS, end=3_000 * MS),
        llm("f4", FRAMEWORK, model="qwen-max"),
        llm("f5", CLIENT),
    ):  # two client spans are two calls
        assert mark_duplicates([client, other]) == 0
        assert other.duplicate_of is None


def test_one_client_span_pairs_with_one_framework_span() -> None:
    spans = [llm("c1", CLIENT), llm("f1", FRAMEWORK), llm("f2", FRAMEWORK)]
    assert mark_duplicates(spans) == 1 and len(counted_calls(spans)) == 2


def _two_instrumentations() -> bytes:
    data = TracesData()
    for scope, sid in ((CLIENT, b"\x01" * 8), (FRAMEWORK, b"\x02" * 8)):
        one = traces(
            span(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 5,
                },
                span_id=sid,
                trace_id=sid * 2,
            ),
            scope=scope,
        )
        data.resource_spans.extend(one.resource_spans)
    return data.SerializeToString()


def test_ingest_marks_and_counts_duplicates_and_can_be_switched_off() -> None:
    raw = _two_instrumentations()
    result = ingest_message(raw)
    assert result.duplicates == 1
    assert [s.duplicate_of for s in result.spans] == [None, "0101010101010101"]
    off = IngestOptions(normalize=NormalizeOptions(dedupe_instrumentations=False))
    result = ingest_message(raw, options=off)
    assert result.duplicates == 0 and len(counted_calls(result.spans)) == 2


def test_ttft_from_the_first_streamed_chunk_event() -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.output_tokens": 11,
    }
    events = [("gen_ai.content.completion.chunk", T0 + ms * MS, {}) for ms in (420, 180, 300)]
    rec = ingest_message(traces(span(attrs, events=events)).SerializeToString()).spans[0]
    assert rec.ttft_s == 0.18 and rec.streaming is True
    assert rec.tpot_s is not None and abs(rec.tpot_s - (2.0 - 0.18) / 10) < 1e-9
    plain = ingest_message(traces(span(attrs)).SerializeToString()).spans[0]
    assert plain.ttft_s is None and plain.streaming is None
