"""Workflow nodes: Dify's node spans and LangGraph's nodes normalized, per-node windows, and
the nodes on each workflow run's critical path.

The Dify spans carry what Dify's own OpenTelemetry code sets: the run span of
``WorkflowAppRunnerHandler`` (``dify.app_id``, ``dify.workflow_id``, ``gen_ai.user.id``, ...)
and one INTERNAL span per node from ``ObservabilityLayer`` (named after the node's title;
``node.id``, ``node.execution_id``, ``node.type``, ``gen_ai.framework``, ``gen_ai.span.kind``;
the LLM node adds model, provider and usage; an error is an exception event and an ERROR
status). The LangGraph spans are OpenInference's LangChain instrumentation: node spans named
after the node, with the node in the ``metadata`` JSON that the calls inside it share.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.ingest.spans import Layer, LlmSpan
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.preaggregate import PreAggregator
from spanwatch.pipeline.windows.spec import WindowSettings, WindowSpec
from spanwatch.pipeline.windows.state import close_offline
from tests.builders import T0, span, traces

S = 1_000_000_000
RUN = b"\x01" * 8
INTERNAL = Span.SPAN_KIND_INTERNAL


def dify_node(
    n: int, title: str, ntype: str, kind: str, start: float, end: float, **extra: Any
) -> Span:
    attrs = {
        "node.id": f"17{n:011d}",
        "node.execution_id": f"exec-{n}",
        "node.type": ntype,
        "gen_ai.framework": "dify",
        "gen_ai.span.kind": kind,
        **extra.pop("attrs", {}),
    }
    return span(
        attrs,
        name=title,
        kind=INTERNAL,
        start=T0 + int(start * S),
        end=T0 + int(end * S),
        span_id=bytes([n + 1]) * 8,
        parent=RUN,
        **extra,
    )


def dify_run(error_node: bool = False) -> list[Span]:
    """Start -> (Retrieve || Search) -> Answer -> Format; the run ends at 10 s."""
    run = span(
        {
            "dify.app_id": "app-1",
            "dify.tenant_id": "tenant-1",
            "gen_ai.user.id": "u-7",
            "dify.streaming": True,
            "dify.workflow_id": "wf-42",
        },
        name="WorkflowAppRunner.run",
        kind=INTERNAL,
        start=T0,
        end=T0 + 10 * S,
        span_id=RUN,
    )
    llm = {
        "gen_ai.request.model": "qwen-max",
        "gen_ai.provider.name": "tongyi",
        "gen_ai.usage.input_tokens": 900,
        "gen_ai.usage.output_tokens": 120,
    }
    exc = [("exception", T0 + 3 * S, {"exception.type": "HTTPStatusError"})]
    return [
        dify_node(1, "Start", "start", "TASK", 0.0, 0.5),
        dify_node(2, "Retrieve", "knowledge-retrieval", "RETRIEVER", 0.5, 4.5),
        dify_node(3, "Search", "http-request", "TASK", 0.5, 3.0, error=error_node, events=exc),
        dify_node(4, "Answer", "llm", "LLM", 4.5, 9.0, attrs=llm),
        dify_node(5, "Format", "code", "TASK", 9.0, 9.8),
        run,
    ]


def records(spans: list[Span]) -> list[LlmSpan]:
    return ingest_message(traces(*spans, service="dify-api").SerializeToString()).spans


def windows(messages: list[list[LlmSpan]]) -> dict[str, dict[str, Any]]:
    keyer = SeriesKeyer()
    pre = PreAggregator(WindowSettings((WindowSpec.parse("1m"),), 0, 10**12), keyer, lambda: 0)
    parts = [p for i, m in enumerate(messages) for p in pre.add_message(0, i, m)]
    out = {}
    for c in close_offline(parts):
        rec = c.to_record(keyer.labels(json.loads(c.series)))
        out[rec["series"]["node"] or rec["series"]["operation"]] = rec
    return out


def test_dify_node_spans_become_node_records() -> None:
    recs = {r.name: r for r in records(dify_run(error_node=True))}
    assert recs["Answer"].node == "llm: Answer" and recs["Answer"].model == "qwen-max"
    assert recs["Retrieve"].node == "knowledge-retrieval: Retrieve"
    assert recs["Retrieve"].operation == "retrieval" and recs["Retrieve"].layer is Layer.APP
    assert recs["Search"].node == "http-request: Search" and recs["Search"].status == "error"
    assert recs["Search"].error_type == "HTTPStatusError"
    assert recs["Format"].duration_s == 0.8
    assert recs["WorkflowAppRunner.run"].node is None


def test_older_dify_node_spans_without_genai_attributes_are_kept() -> None:
    sp = span({"node.id": "1", "node.type": "code"}, name="Clean input", kind=INTERNAL)
    (rec,) = records([sp])
    assert (rec.node, rec.layer, rec.operation) == ("code: Clean input", Layer.APP, "task")


def test_per_node_windows_and_the_critical_path() -> None:
    by = windows([records(dify_run(error_node=True))])
    on_path = {"start: Start", "knowledge-retrieval: Retrieve", "llm: Answer", "code: Format"}
    for node in on_path:
        assert by[node]["critical_path_count"] == 1, node
    assert by["llm: Answer"]["critical_path_s"] == 4.5
    assert by["http-request: Search"]["critical_path_count"] == 0  # parallel, finished first
    assert by["http-request: Search"]["errors"] == 1 and by["llm: Answer"]["count"] == 1
    assert by["llm: Answer"]["latency_s"]["max"] == 4.5


def test_the_critical_path_is_found_when_the_run_comes_in_a_later_message() -> None:
    spans = records(dify_run())
    nodes, run = spans[:-1], spans[-1:]
    by = windows([nodes[:2], nodes[2:], run])
    assert by["llm: Answer"]["critical_path_count"] == 1
    assert by["http-request: Search"]["critical_path_count"] == 0


def test_langgraph_nodes_from_openinference() -> None:
    def meta(node: str, step: int) -> str:
        return json.dumps(
            {"langgraph_step": step, "langgraph_node": node, "langgraph_triggers": ["start"]}
        )

    root = span({"openinference.span.kind": "CHAIN"}, name="LangGraph", kind=INTERNAL, span_id=RUN)
    retrieve = span(
        {"openinference.span.kind": "CHAIN", "metadata": meta("retrieve", 1)},
        name="retrieve",
        kind=INTERNAL,
        span_id=b"\x02" * 8,
        parent=RUN,
    )
    call = span(  # a call inside the node shares its metadata: not a node itself
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "metadata": meta("retrieve", 1),
        },
        name="ChatOpenAI",
        span_id=b"\x03" * 8,
        parent=b"\x02" * 8,
    )
    recs = {r.name: r for r in records([call, retrieve, root])}
    assert recs["retrieve"].node == "langgraph: retrieve"
    assert recs["ChatOpenAI"].node is None and recs["LangGraph"].node is None
