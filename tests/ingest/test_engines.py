"""Inference-engine request spans, as the engines' own tracing code writes them.

No GPU here to run vLLM or SGLang, so each span below carries exactly the attribute set that
the engine's tracing code sets (read from its source; names in the docstrings), with the
span name, kind, resource and events it uses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.ingest.spans import Layer, LlmSpan
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.preaggregate import PreAggregator
from spanwatch.pipeline.windows.spec import WindowSettings, WindowSpec
from spanwatch.pipeline.windows.state import close_offline
from tests.builders import T0, span, traces

S = 1_000_000_000


def vllm_v1_request(preempted: int = 1) -> Span:
    """vLLM v1 ``OutputProcessor.do_tracing`` (vllm/v1/engine/output_processor.py): a SERVER
    span ``llm_request`` from the arrival time, with the latency breakdown computed from the
    request's stats (queued -> scheduled -> first token -> last token) and no model name;
    the request journey events (vllm/v1/core/sched/journey_events.py: ``journey.<TYPE>``
    with a progress snapshot and the running ``num_preemptions``)."""
    queued, prefill, decode = 0.4, 0.25, 2.0
    ttft, e2e = queued + prefill + 0.01, queued + prefill + decode + 0.02
    attrs = {
        "gen_ai.latency.time_to_first_token": ttft,
        "gen_ai.latency.e2e": e2e,
        "gen_ai.latency.time_in_queue": queued,
        "gen_ai.usage.prompt_tokens": 812,
        "gen_ai.usage.completion_tokens": 201,
        "gen_ai.latency.time_in_model_prefill": prefill,
        "gen_ai.latency.time_in_model_decode": decode,
        "gen_ai.latency.time_in_model_inference": prefill + decode,
        "gen_ai.request.id": "cmpl-5f0c0a4e6f0b4d0c",
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 512,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.n": 1,
    }
    journey = [("QUEUED", 0.0, 0), ("SCHEDULED", queued, 0)]
    for i in range(preempted):
        journey += [("PREEMPTED", queued + 0.05 * (i + 1), i + 1)]
        journey += [("SCHEDULED", queued + 0.06 * (i + 1), i + 1)]
    journey += [("FIRST_TOKEN", ttft, preempted), ("FINISHED", e2e, preempted)]
    events = [
        (
            f"journey.{kind}",
            T0 + int(at * S),
            {
                "event.type": kind,
                "ts.monotonic": 1234.5 + at,
                "scheduler.step": 100 + n,
                "phase": "DECODE" if at >= ttft else "PREFILL",
                "prefill.done_tokens": 812 if at >= ttft else 0,
                "prefill.total_tokens": 812,
                "decode.done_tokens": 201 if kind == "FINISHED" else 0,
                "decode.max_tokens": 512,
                "num_preemptions": p,
            },
        )
        for n, (kind, at, p) in enumerate(journey)
    ]
    return span(
        attrs,
        name="llm_request",
        kind=Span.SPAN_KIND_SERVER,
        end=T0 + int(e2e * S),
        events=events,
    )


def sglang_request(retracts: int = 2) -> Span:
    """SGLang ``APIServerReqTimeStats.convert_to_gen_ai_span_attrs``
    (python/sglang/srt/managers/req_time_stats.py, or tracing in older versions): TTFT and
    end-to-end from the request's creation, decode from the first token, inference and
    prefill from the dispatch to the scheduler; each retraction (preemption) of the request
    is a ``retract`` event (``trace_event("retract", ...)``)."""
    created, dispatched, first, finished = 0.0, 0.05, 0.9, 3.4
    attrs = {
        "gen_ai.latency.time_to_first_token": first - created,
        "gen_ai.latency.e2e": finished - created,
        "gen_ai.latency.time_in_model_decode": finished - first,
        "gen_ai.latency.time_in_model_inference": finished - dispatched,
        "gen_ai.latency.time_in_model_prefill": first - dispatched,
    }
    events = [("retract", T0 + int((1.0 + i) * S), {}) for i in range(retracts)]
    return span(
        attrs, name="Req 7d1c", kind=Span.SPAN_KIND_SERVER, end=T0 + int(3.4 * S), events=events
    )


def one(sp: Span, service: str) -> LlmSpan:
    value = traces(sp, service=service, scope="vllm.llm_engine").SerializeToString()
    (rec,) = ingest_message(value).spans
    return rec


def test_vllm_v1_request_span_breakdown() -> None:
    rec = one(vllm_v1_request(), "unknown_service")  # vLLM's TracerProvider() default
    assert (rec.layer, rec.operation) == (Layer.MODEL_SERVER, "inference")
    assert rec.queue_s == pytest.approx(0.4) and rec.prefill_s == pytest.approx(0.25)
    assert rec.decode_s == pytest.approx(2.0) and rec.inference_s == pytest.approx(2.25)
    assert rec.ttft_s == pytest.approx(0.66) and rec.server_e2e_s == pytest.approx(2.67)
    assert rec.tpot_s == pytest.approx((2.67 - 0.66) / 200)
    assert (rec.input_tokens, rec.output_tokens, rec.request_id) == (812, 201, rec.request_id)
    assert rec.preemptions == 1 and rec.issues == ()
    # vLLM v1 names no model on the span: the series is the server's service, model ""
    assert rec.model is None


def test_vllm_preemptions_are_the_journeys_running_count() -> None:
    assert one(vllm_v1_request(preempted=3), "vllm-qwen").preemptions == 3
    assert one(vllm_v1_request(preempted=0), "vllm-qwen").preemptions == 0


def test_sglang_request_span_breakdown() -> None:
    rec = one(sglang_request(), "sglang-deepseek")
    assert (rec.layer, rec.operation) == (Layer.MODEL_SERVER, "inference")
    assert rec.queue_s is None  # SGLang's span names no queue time
    assert rec.prefill_s == pytest.approx(0.85) and rec.decode_s == pytest.approx(2.5)
    assert rec.inference_s == pytest.approx(3.35) and rec.ttft_s == pytest.approx(0.9)
    assert rec.preemptions == 2


def test_a_span_without_engine_events_has_no_preemption_count() -> None:
    rec = one(span({"gen_ai.latency.e2e": 1.0}, kind=Span.SPAN_KIND_SERVER), "vllm-x")
    assert rec.preemptions is None


def test_windows_show_where_model_server_time_goes_and_the_preemptions() -> None:
    value = traces(
        vllm_v1_request(preempted=1),
        span(  # a second request of the same server, not preempted
            {"gen_ai.latency.e2e": 1.0, "gen_ai.latency.time_in_queue": 0.1},
            kind=Span.SPAN_KIND_SERVER,
            span_id=b"\x02" * 8,
            end=T0 + S,
        ),
        service="vllm-qwen",
    ).SerializeToString()
    recs = ingest_message(value).spans
    keyer = SeriesKeyer()
    settings = WindowSettings((WindowSpec.parse("1m"),), 0, 10**12)
    out: list[dict[str, Any]] = []
    for c in close_offline(PreAggregator(settings, keyer, lambda: 0).add_message(0, 0, recs)):
        out.append(c.to_record(keyer.labels(json.loads(c.series))))
    (w,) = out
    assert w["series"]["layer"] == "model-server" and w["preemptions"] == 1
    assert set(w["time_share"]) >= {"queue", "prefill", "decode"}
    # queue time of both requests over the TTFT of the one that reports it
    assert w["ttft_share"]["queue"] == pytest.approx((0.4 + 0.1) / 0.66, rel=0.01)


def _app_call_through_http(engine: Span) -> bytes:
    """An app's chat span -> its HTTP client span (no LLM attribute) -> vLLM's span, as one
    trace in one message of two resources (the app and the engine)."""
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    chat = span(
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "qwen2.5-72b-instruct"},
        span_id=b"\x0a" * 8,
    )
    http = span({"http.request.method": "POST"}, name="POST", span_id=b"\x0b" * 8)
    http.parent_span_id = chat.span_id
    engine.parent_span_id = http.span_id
    data = TracesData()
    data.MergeFrom(traces(chat, http, service="support-bot"))
    data.MergeFrom(traces(engine, service="vllm-qwen", scope="vllm.llm_engine"))
    return bytes(data.SerializeToString())


def test_vllm_takes_the_model_and_caller_of_the_call_it_serves() -> None:
    """Real vLLM v1 spans name no model: model-server windows would all be model="" and
    per-model rules could not see queue, prefill and decode. The caller's model is the
    engine's, through trace context, across a span that is no LLM record."""
    recs = {r.layer: r for r in ingest_message(_app_call_through_http(vllm_v1_request())).spans}
    engine = recs[Layer.MODEL_SERVER]
    assert (engine.model, engine.caller_service) == ("qwen2.5-72b-instruct", "support-bot")
    assert "inherited:model" in engine.issues
    keyer = SeriesKeyer(("service", "layer", "model", "caller_service"))
    assert keyer.key(engine) == ("vllm-qwen", "model-server", "qwen2.5-72b-instruct", "support-bot")


def test_without_a_caller_the_resource_or_the_configured_mapping_names_the_model() -> None:
    from spanwatch.pipeline.ingest.message import IngestOptions
    from spanwatch.pipeline.ingest.normalize import NormalizeOptions

    value = traces(
        vllm_v1_request(), service="vllm-qwen", resource={"gen_ai.request.model": "qwen-72b"}
    ).SerializeToString()
    (rec,) = ingest_message(value).spans
    assert (rec.model, rec.caller_service) == ("qwen-72b", None)
    mapped = IngestOptions(normalize=NormalizeOptions(engine_models=(("vllm-q*", "qwen-b"),)))
    (rec,) = ingest_message(one_message(vllm_v1_request()), options=mapped).spans
    assert rec.model == "qwen-b"
    assert one(vllm_v1_request(), "vllm-qwen").model is None  # nothing says: model unknown


def one_message(sp: Span, service: str = "vllm-qwen") -> bytes:
    return bytes(traces(sp, service=service, scope="vllm.llm_engine").SerializeToString())
