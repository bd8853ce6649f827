"""Normalization of every supported convention into LlmSpan, with explicit units."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.ingest.normalize import NormalizeOptions
from spanwatch.pipeline.ingest.spans import ContentRef, Layer, LlmSpan
from tests.builders import T0, span, traces


def one(attrs: dict[str, Any], **kw: Any) -> LlmSpan:
    service = kw.pop("service", "chat-app")
    scope = kw.pop("scope", "test")
    resource = kw.pop("resource", None)
    result = ingest_message(
        traces(
            span(attrs, **kw), service=service, scope=scope, resource=resource
        ).SerializeToString()
    )
    assert not result.dead_letters, result.dead_letters
    assert len(result.spans) == 1
    return result.spans[0]


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        pytest.param(  # current OpenTelemetry GenAI conventions
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 31,
                "gen_ai.usage.cache_read.input_tokens": 100,
                "gen_ai.usage.cache_creation.input_tokens": 8,
                "gen_ai.usage.reasoning.output_tokens": 12,
                "gen_ai.response.time_to_first_chunk": 0.5,
                "gen_ai.request.stream": True,
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.conversation.id": "c1",
                "user.id": "u1",
            },
            {
                "operation": "chat",
                "provider": "openai",
                "request_model": "gpt-4o",
                "response_model": "gpt-4o-2024-08-06",
                "input_tokens": 120,
                "output_tokens": 31,
                "cache_read_tokens": 100,
                "cache_creation_tokens": 8,
                "reasoning_tokens": 12,
                "ttft_s": 0.5,
                "tpot_s": 0.05,
                "streaming": True,
                "finish_reasons": ("stop",),
                "session_id": "c1",
                "user_id": "u1",
                "layer": Layer.APP,
            },
            id="otel-genai",
        ),
        pytest.param(  # deprecated GenAI names (OpenLLMetry still writes most of them)
            {
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-3-5-sonnet",
                "gen_ai.usage.prompt_tokens": 50,
                "gen_ai.usage.completion_tokens": 7,
                "gen_ai.usage.cache_read_input_tokens": 20,
                "gen_ai.usage.cache_creation_input_tokens": 5,
                "llm.usage.total_tokens": 57,
                "llm.request.type": "completion",
                "llm.is_streaming": False,
                "traceloop.association.properties.user_id": "alice",
                "traceloop.association.properties.session_id": "s9",
            },
            {
                "provider": "anthropic",
                "input_tokens": 50,
                "output_tokens": 7,
                "cache_read_tokens": 20,
                "cache_creation_tokens": 5,
                "total_tokens": 57,
                "operation": "text_completion",
                "streaming": False,
                "user_id": "alice",
                "session_id": "s9",
                "tpot_s": None,
            },
            id="openllmetry",
        ),
        pytest.param(  # OpenInference / Phoenix
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "qwen-max",
                "llm.provider": "dashscope",
                "llm.token_count.prompt": 300,
                "llm.token_count.completion": 40,
                "llm.token_count.total": 340,
                "llm.token_count.prompt_details.cache_read": 256,
                "llm.token_count.completion_details.reasoning": 10,
                "llm.invocation_parameters": json.dumps({"stream": True}),
                "session.id": "sess",
                "user.id": "bob",
                "input.value": "hello",
            },
            {
                "operation": "chat",
                "response_model": "qwen-max",
                "provider": "dashscope",
                "input_tokens": 300,
                "output_tokens": 40,
                "cache_read_tokens": 256,
                "reasoning_tokens": 10,
                "streaming": True,
                "session_id": "sess",
                "user_id": "bob",
            },
            id="openinference",
        ),
        pytest.param(  # vLLM server span: seconds, deprecated token names
            {
                "gen_ai.request.model": "qwen2.5-72b",
                "gen_ai.request.id": "cmpl-1",
                "gen_ai.usage.prompt_tokens": 1000,
                "gen_ai.usage.completion_tokens": 101,
                "gen_ai.latency.time_in_queue": 0.25,
                "gen_ai.latency.time_to_first_token": 0.4,
                "gen_ai.latency.time_in_model_prefill": 0.15,
                "gen_ai.latency.time_in_model_decode": 1.0,
                "gen_ai.latency.e2e": 1.4,
            },
            {
                "layer": Layer.MODEL_SERVER,
                "operation": "inference",
                "request_id": "cmpl-1",
                "queue_s": 0.25,
                "ttft_s": 0.4,
                "prefill_s": 0.15,
                "decode_s": 1.0,
                "server_e2e_s": 1.4,
                "tpot_s": pytest.approx(0.01),
            },
            id="vllm",
        ),
        pytest.param(  # LoongSuite / Dify ARMS: TTFT integer nanoseconds
            {
                "gen_ai.span.kind": "LLM",
                "gen_ai.request.model": "qwen-plus",
                "gen_ai.response.time_to_first_token": 350_000_000,
                "gen_ai.user.id": "u7",
                "gen_ai.session.id": "s7",
                "gen_ai.usage.total_tokens": 90,
                "gen_ai.usage.input_tokens": 60,
                "gen_ai.usage.output_tokens": 30,
                "gen_ai.input.messages_ref": "oss://bucket/in/1.json",
            },
            {
                "ttft_s": pytest.approx(0.35),
                "user_id": "u7",
                "session_id": "s7",
                "total_tokens": 90,
                "operation": "chat",
            },
            id="loongsuite",
        ),
        pytest.param(  # deprecated GenAI double TTFT is seconds, not nanoseconds
            {"gen_ai.request.model": "m", "gen_ai.response.time_to_first_token": 0.25},
            {"ttft_s": 0.25},
            id="deprecated-ttft-double",
        ),
        pytest.param(  # LiteLLM cost breakdown
            {
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.system": "openai",
                "gen_ai.cost.total_cost": 5.88e-05,
                "gen_ai.cost.input_cost": 4.26e-05,
                "llm.request.type": "acompletion",
            },
            {"reported_cost": 5.88e-05, "operation": "chat"},
            id="litellm",
        ),
    ],
)
def test_conventions(attrs: dict[str, Any], expected: dict[str, Any]) -> None:
    rec = one(attrs)
    for name, want in expected.items():
        assert getattr(rec, name) == want, name
    assert rec.issues == ()


def test_loongsuite_external_ref_is_recorded_not_fetched() -> None:
    rec = one({"gen_ai.span.kind": "LLM", "gen_ai.output.messages_ref": "oss://b/out/1"})
    assert ContentRef("output", "external", "oss://b/out/1", 0) in rec.content


def test_ttft_from_first_token_event_when_no_attribute() -> None:
    rec = one(
        {"openinference.span.kind": "LLM", "llm.token_count.completion": 11},
        events=[("First Token Stream Event", T0 + 300_000_000, {})],
    )
    assert rec.ttft_s == pytest.approx(0.3)
    assert rec.tpot_s == pytest.approx((2.0 - 0.3) / 10)


@pytest.mark.parametrize(
    ("attrs", "tpot"),
    [
        ({"gen_ai.usage.output_tokens": 1, "gen_ai.response.time_to_first_chunk": 0.5}, None),
        (
            {
                "gen_ai.usage.output_tokens": 50,
                "gen_ai.request.stream": False,
                "gen_ai.response.time_to_first_chunk": 0.5,
            },
            None,
        ),
        ({"gen_ai.usage.output_tokens": 50}, None),  # no TTFT: TPOT unknown, never zero
        ({"gen_ai.usage.output_tokens": 0, "gen_ai.response.time_to_first_chunk": 0.5}, None),
    ],
)
def test_tpot_absent_when_undefined(attrs: dict[str, Any], tpot: float | None) -> None:
    assert one({"gen_ai.request.model": "m", **attrs}).tpot_s is tpot


@pytest.mark.parametrize(
    ("attrs", "kw", "layer", "operation"),
    [
        (
            {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
            {},
            Layer.TOOL,
            "execute_tool",
        ),
        (
            {"mcp.method.name": "tools/call", "gen_ai.tool.name": "fetch"},
            {},
            Layer.TOOL,
            "execute_tool",
        ),
        (
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
            {},
            Layer.AGENT,
            "invoke_agent",
        ),
        (
            {"traceloop.span.kind": "tool", "traceloop.entity.name": "calc"},
            {},
            Layer.TOOL,
            "execute_tool",
        ),
        ({"gen_ai.request.model": "m"}, {"service": "higress-gateway"}, Layer.GATEWAY, "chat"),
        ({"gen_ai.request.model": "m"}, {"scope": "vllm.engine"}, Layer.MODEL_SERVER, "inference"),
        ({"openinference.span.kind": "RETRIEVER"}, {}, Layer.APP, "retrieval"),
    ],
)
def test_layer_and_operation(
    attrs: dict[str, Any], kw: dict[str, Any], layer: Layer, operation: str
) -> None:
    rec = one(attrs, **kw)
    assert (rec.layer, rec.operation) == (layer, operation)


def test_tool_name_and_argument_hash() -> None:
    a = one(
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "search",
            "gen_ai.tool.call.arguments": '{"q": "x"}',
        }
    )
    b = one(
        {"openinference.span.kind": "TOOL", "tool.name": "search", "tool.parameters": '{"q": "x"}'}
    )
    assert a.tool_name == b.tool_name == "search"
    assert a.tool_args_hash == b.tool_args_hash and len(a.tool_args_hash or "") == 16


def test_layer_override_from_config() -> None:
    opts = NormalizeOptions(layer_overrides=(("edge-*", Layer.GATEWAY),))
    from spanwatch.pipeline.ingest.message import IngestOptions

    data = traces(span({"gen_ai.request.model": "m"}), service="edge-proxy").SerializeToString()
    rec = ingest_message(data, options=IngestOptions(normalize=opts)).spans[0]
    assert rec.layer is Layer.GATEWAY


def test_non_llm_spans_are_skipped_and_counted() -> None:
    data = traces(
        span({"http.route": "/health"}), span({"gen_ai.request.model": "m"}, span_id=b"\x02" * 8)
    ).SerializeToString()
    result = ingest_message(data)
    assert len(result.spans) == 1 and result.skipped_non_llm == 1 and result.seen == 2


@pytest.mark.parametrize(
    ("attrs", "field", "value", "issue"),
    [
        (
            {"gen_ai.usage.input_tokens": "42"},
            "input_tokens",
            42,
            "coerced:gen_ai.usage.input_tokens",
        ),
        (
            {"gen_ai.usage.input_tokens": "lots"},
            "input_tokens",
            None,
            "bad_type:gen_ai.usage.input_tokens",
        ),
        (
            {"gen_ai.usage.input_tokens": -5},
            "input_tokens",
            None,
            "out_of_range:gen_ai.usage.input_tokens",
        ),
        (
            {"gen_ai.usage.input_tokens": True},
            "input_tokens",
            None,
            "bad_type:gen_ai.usage.input_tokens",
        ),
        (
            {"gen_ai.response.time_to_first_chunk": -1.0},
            "ttft_s",
            None,
            "out_of_range:gen_ai.response.time_to_first_chunk",
        ),
        ({"gen_ai.response.time_to_first_chunk": 99.0}, "ttft_s", None, "ttft_exceeds_duration"),
        (
            {"gen_ai.request.model": ["a", "b"]},
            "request_model",
            None,
            "bad_type:gen_ai.request.model",
        ),
        (
            {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read.input_tokens": 11},
            "cache_read_tokens",
            11,
            "cached_exceeds_input",
        ),
    ],
)
def test_bad_attributes_cost_the_field_not_the_span(
    attrs: dict[str, Any], field: str, value: Any, issue: str
) -> None:
    rec = one({"gen_ai.operation.name": "chat", **attrs})
    assert getattr(rec, field) == value
    assert issue in rec.issues


def test_bad_preferred_source_falls_back_to_the_next() -> None:
    rec = one({"gen_ai.usage.input_tokens": "n/a", "gen_ai.usage.prompt_tokens": 9})
    assert rec.input_tokens == 9 and "bad_type:gen_ai.usage.input_tokens" in rec.issues


@pytest.mark.parametrize(
    ("start", "end", "duration", "issue"),
    [
        (T0 + 5, T0, 0.0, "end_before_start"),
        (T0, T0 + 10 * 86400 * 10**9, None, "absurd_duration"),
        (0, T0, None, "missing:timestamp"),
    ],
)
def test_impossible_durations_are_clamped_and_flagged(
    start: int, end: int, duration: float | None, issue: str
) -> None:
    rec = one({"gen_ai.request.model": "m"}, start=start, end=end)
    assert rec.duration_s == duration and issue in rec.issues


def test_missing_service_name_is_flagged() -> None:
    rec = one({"gen_ai.request.model": "m"}, service=None)
    assert rec.service == "unknown_service" and "missing:service.name" in rec.issues


def test_error_type_from_status_and_exception_event() -> None:
    rec = one(
        {"gen_ai.request.model": "m"},
        error=True,
        events=[("exception", T0 + 1, {"exception.type": "openai.RateLimitError"})],
    )
    assert (rec.status, rec.error_type) == ("error", "openai.RateLimitError")
    assert one({"gen_ai.request.model": "m"}, error=True).error_type == "_OTHER"
    assert (
        one({"gen_ai.request.model": "m", "error.type": "timeout"}, error=True).error_type
        == "timeout"
    )


def test_content_references_never_hold_content() -> None:
    secret = "my card is 4111 1111 1111 1111"
    rec = one(
        {
            "gen_ai.request.model": "m",
            "gen_ai.input.messages": secret,
            "gen_ai.prompt.0.content": secret,
        },
        events=[
            (
                "gen_ai.content.chunk",
                T0 + 1,
                {"gen_ai.content.payload_id": "p1", "gen_ai.content.role": "output"},
            )
        ],
    )
    kinds = {(c.role, c.kind, c.location) for c in rec.content}
    assert ("input", "inline", "gen_ai.input.messages") in kinds
    assert ("input", "inline", "gen_ai.prompt.0.content") in kinds
    assert ("output", "chunk", "p1") in kinds
    assert secret not in json.dumps(rec.to_dict()) and secret not in repr(rec)


def test_record_round_trips_through_json() -> None:
    rec = one(
        {
            "gen_ai.request.model": "m",
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.input.messages": "hi",
        }
    )
    again = LlmSpan.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert again == rec


def test_json_text_lists_and_invocation_parameters() -> None:
    """vLLM writes finish reasons as JSON text; OpenInference keeps a failed call's model only
    inside llm.invocation_parameters."""
    vllm = {"gen_ai.request.model": "qwen", "gen_ai.response.finish_reasons": '["stop"]'}
    (rec,) = ingest_message(traces(span(vllm)).SerializeToString()).spans
    assert rec.finish_reasons == ("stop",) and not rec.issues
    failed = {
        "openinference.span.kind": "LLM",
        "llm.invocation_parameters": '{"model": "gpt-4o-mini", "stream": true}',
    }
    (rec,) = ingest_message(traces(span(failed, error=True)).SerializeToString()).spans
    assert (rec.model, rec.streaming, rec.status) == ("gpt-4o-mini", True, "error")
    named = {**failed, "llm.model_name": "gpt-4o-mini-2024-07-18"}
    (rec,) = ingest_message(traces(span(named)).SerializeToString()).spans
    assert rec.model == "gpt-4o-mini-2024-07-18"  # the model that answered wins
    broken = {"openinference.span.kind": "LLM", "llm.invocation_parameters": '{"model": '}
    (rec,) = ingest_message(traces(span(broken)).SerializeToString()).spans
    assert "bad_json:llm.invocation_parameters" in rec.issues
