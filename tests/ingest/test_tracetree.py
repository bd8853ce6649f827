"""A trace split over several messages: agent depth and self time joined across them."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from spanwatch.pipeline.common.durations import NS
from spanwatch.pipeline.ingest.spans import Layer, LlmSpan
from spanwatch.pipeline.ingest.tracetree import TraceShape, TraceTrees
from spanwatch.pipeline.tokens.settings import BudgetSettings
from spanwatch.pipeline.windows.golden import SeriesKeyer, self_times
from spanwatch.pipeline.windows.preaggregate import PreAggregator
from spanwatch.pipeline.windows.spec import WindowSettings, WindowSpec
from spanwatch.pipeline.windows.state import SeriesState
from tests.builders import llm_span
from tests.tokens.test_tokens import PRICES

T0 = 1_700_000_000 * NS
MS = 1_000_000


def span(
    span_id: str, parent: str = "", *, trace: str = "t", dur_ms: int = 100, **kw: Any
) -> LlmSpan:
    fields: dict[str, Any] = dict(
        trace_id=trace * 32,
        name=span_id,
        operation="chain",
        span_kind="internal",
        start_ns=T0,
        end_ns=T0 + dur_ms * MS,
        duration_s=dur_ms / 1000,
    )
    return llm_span(span_id, parent, **(fields | kw))


def agent(span_id: str, parent: str = "", **kw: Any) -> LlmSpan:
    return span(span_id, parent, layer=Layer.AGENT, operation="invoke_agent", **kw)


def nested_agents(depth: int) -> list[LlmSpan]:
    """root chain -> agent a1 -> ... -> agent aN -> chat call, children listed first."""
    out = [
        span(
            "llm",
            f"a{depth}",
            layer=Layer.APP,
            operation="chat",
            span_kind="client",
            input_tokens=10,
            output_tokens=5,
            request_model="gpt-4o-mini",
            dur_ms=50,
        )
    ]
    for i in range(depth, 0, -1):
        out.append(agent(f"a{i}", f"a{i - 1}" if i > 1 else "root", dur_ms=100 + 10 * i))
    out.append(span("root", dur_ms=500))
    return out


def test_depth_is_the_same_however_the_trace_is_split_and_ordered() -> None:
    spans = nested_agents(4)
    spans.append(agent("side", "root", dur_ms=20))  # a shallower branch
    rng = random.Random(7)
    for _ in range(200):
        order = spans[:]
        rng.shuffle(order)
        cuts = sorted(rng.sample(range(1, len(order)), rng.randint(0, len(order) - 1)))
        shape = TraceShape()
        for lo, hi in itertools.pairwise([0, *cuts, len(order)]):
            for s in order[lo:hi]:
                shape.add(s)
        assert shape.depth == 4


def test_a_span_delivered_twice_joins_once() -> None:
    trees = TraceTrees(lambda: 0)
    spans = nested_agents(2)
    first = trees.join(0, spans[:1])
    again = trees.join(0, spans[:1])
    assert first == again == ([0], {"t" * 32: 0})
    _, depths = trees.join(0, spans[1:])
    assert depths == {"t" * 32: 2}
    assert trees.spans_held == len(spans)


def test_self_time_subtracts_children_from_earlier_messages() -> None:
    trees = TraceTrees(lambda: 0)
    llm, a1, root = nested_agents(1)
    first, _ = trees.join(0, [llm])  # children are exported first
    second, _ = trees.join(0, [a1, root])  # a1's child came before; root's child is here
    assert first == [0] and second == [50 * MS, 110 * MS]
    assert self_times([a1, root], second) == [{"agent": 60 * MS}, {"app": 390 * MS}]
    # without the join, a1 would keep its child's time as its own
    assert self_times([a1, root]) == [{"agent": 110 * MS}, {"app": 390 * MS}]


def _served_call() -> list[LlmSpan]:
    """gateway 1000 ms -> app chat 900 ms -> model server 800 ms (queue 100, prefill 200,
    decode 450: 50 ms unaccounted), children first as an exporter sends them."""
    server = span(
        "srv", "chat", layer=Layer.MODEL_SERVER, operation="inference", dur_ms=800,
        queue_s=0.1, prefill_s=0.2, decode_s=0.45,
    )  # fmt: skip
    chat = span("chat", "gw", operation="chat", dur_ms=900)
    return [server, chat, span("gw", layer=Layer.GATEWAY, dur_ms=1000)]


@pytest.mark.parametrize("cuts", [(), (1,), (2,), (1, 2)])
def test_where_the_time_goes_counts_everything_below_a_span(cuts: tuple[int, ...]) -> None:
    """The demo's "where time goes" was blank for most app rows: an app's chat call served
    by a model server has almost no self time. A span's parts are its own and those of
    every span below it, however the trace is split into messages."""
    spans = _served_call()
    trees = TraceTrees(lambda: 0)
    got = []
    for lo, hi in itertools.pairwise([0, *cuts, len(spans)]):
        part = spans[lo:hi]
        children, _ = trees.join(0, part)
        got += trees.subtree(0, part, self_times(part, children))
    server = {"queue": 100 * MS, "prefill": 200 * MS, "decode": 450 * MS, "model-server": 50 * MS}
    assert got == [
        server,
        {**server, "app": 100 * MS},
        {**server, "app": 100 * MS, "gateway": 100 * MS},
    ]
    assert not any(sh.child_parts for sh in trees.traces.values())  # handed on, not kept


def test_bounded_by_spans_per_trace_total_spans_and_wait() -> None:
    now = [0]
    trees = TraceTrees(lambda: now[0], wait_ns=60 * NS, max_spans=10, max_spans_per_trace=4)
    trees.join(0, [span(f"s{i}") for i in range(6)])
    assert trees.dropped_spans == 2 and trees.spans_held == 4
    trees.join(0, [span(f"s{i}", trace="u") for i in range(4)])
    trees.join(0, [span(f"s{i}", trace="v") for i in range(4)])  # 12 > 10: oldest goes
    assert trees.evicted_traces == 1 and trees.spans_held == 8
    assert [k[1][0] for k in trees.traces] == ["u", "v"]
    now[0] = 61 * NS
    trees.join(1, [span("x", trace="w")])  # u and v were quiet for longer than the wait
    assert [k[1][0] for k in trees.traces] == ["w"] and trees.spans_held == 1
    trees.forget([0])  # partition 1 went to another worker
    assert not trees.traces and trees.spans_held == 0


def pre(max_spans: int = 200_000) -> PreAggregator:
    settings = WindowSettings(
        specs=(WindowSpec.parse("1m"),), allowed_lateness_ns=5 * NS, idle_timeout_ns=30 * NS
    )
    return PreAggregator(
        settings,
        SeriesKeyer(("service", "layer", "operation", "model")),
        lambda: T0,
        PRICES,
        trees=TraceTrees(lambda: T0, max_spans=max_spans),
    )


TRACE = '["@tokens","trace","' + "t" * 32 + '"]'


def black_holes(messages: list[list[LlmSpan]], *, joined: bool) -> tuple[int, list[Any]]:
    """Apply every trace partial to the trace's state as its owner would; (depth, events).
    ``joined=False`` gives each message a fresh pre-aggregator: depth seen per message."""
    agg = pre()
    state = SeriesState(kind="tokens")
    events: list[Any] = []
    for offset, msg in enumerate(messages):
        for partial in (agg if joined else pre()).add_message(0, offset, msg):
            if partial.series == TRACE and state.apply(partial):
                events += state.apply_calls(partial, BudgetSettings(max_agent_depth=3).budgets())
    assert state.activity is not None
    return state.activity.max_depth, events


@pytest.mark.parametrize("split", [1, 2, 3, 7], ids=lambda n: f"{n}-messages")
def test_max_agent_depth_fires_however_many_messages_carry_the_trace(split: int) -> None:
    spans = nested_agents(5)  # children first, as a batching exporter sends them
    size = -(-len(spans) // split)
    messages = [spans[i : i + size] for i in range(0, len(spans), size)]
    assert len(messages) == split
    depth, events = black_holes(messages, joined=True)
    assert depth == 5
    # fires once, as soon as the joined depth passes the budget
    assert [e["budget"] for e in events] == ["max_agent_depth"] and events[0]["value"] > 3
    if split == 7:  # one span per message: per message, no depth beyond 1 is visible
        assert black_holes(messages, joined=False) == (1, [])


# ------------------------------------------------------------------------- no response


def _hung_trace(answered: bool) -> list[LlmSpan]:
    """gateway -> agent -> (chat client -> model server); the gateway times out (504).
    Without ``answered`` the LLM spans never arrive: the model call hung."""
    gw = span("g", layer=Layer.GATEWAY, operation="invoke_agent", status="error", error_type="504")
    ag = agent("a", "g", status="error", error_type="TimeoutError")
    calls = [
        span("c", "a", operation="chat"),
        span("m", "c", layer=Layer.MODEL_SERVER, operation="inference"),
    ]
    return [*calls, ag, gw] if answered else [ag, gw]


def _no_response(messages: list[list[LlmSpan]]) -> int:
    pre = PreAggregator(
        WindowSettings((WindowSpec.parse("1m"),), 0, 10**12), SeriesKeyer(), lambda: T0
    )
    partials = [p for i, msg in enumerate(messages) for p in pre.add_message(0, i, msg)]
    return sum(agg.no_response for p in partials for agg in p.windows.values())


@pytest.mark.parametrize("split", [1, 2, 4], ids=lambda n: f"{n} messages")
def test_a_timeout_with_no_llm_call_below_is_no_response(split: int) -> None:
    hung = _hung_trace(answered=False)
    msgs = [hung[i::split] for i in range(split) if hung[i::split]]
    assert _no_response(msgs) == 2  # the agent and the gateway waited for nothing


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))), ids=str)
def test_a_timeout_with_an_answer_below_is_not_no_response(order: tuple[int, ...]) -> None:
    """Whatever order the parts come in, children before the parent: the LLM call is seen."""
    spans = _hung_trace(answered=True)
    calls, waiting = spans[:2], spans[2:]
    # the LLM spans end first, so they come in the first message or with their parents
    msgs = [[calls[i] for i in order if i < 2], [waiting[i - 2] for i in order if i >= 2]]
    assert _no_response([m for m in msgs if m]) == 0


def test_an_ordinary_error_or_a_timeout_on_a_model_server_is_not_no_response() -> None:
    msgs = [
        [span("x", layer=Layer.GATEWAY, status="error", error_type="500")],
        [span("y", layer=Layer.MODEL_SERVER, status="error", error_type="timeout")],
        [span("z", layer=Layer.APP, status="ok")],
    ]
    assert _no_response(msgs) == 0


def test_an_llm_call_that_times_out_is_an_error_of_the_call_not_no_response() -> None:
    """The call's span is there (a cloud API has no server span below it): the model call
    is not missing, it failed; the error rate counts it."""
    chat = span("c", operation="chat", status="error", error_type="openai.APITimeoutError")
    assert _no_response([[chat]]) == 0
    workflow = span("w", status="error", error_type="ReadTimeout")  # waited for nothing
    assert _no_response([[chat], [workflow]]) == 1


def test_answered_marks_survive_a_parent_seen_before_its_grandparent() -> None:
    sh = TraceShape()
    for s in (span("c", "a", operation="chat"), agent("a", "g")):
        sh.add(s)
    assert sh.answered == {"a", "g"}  # g is not seen yet: it carries on when it arrives
    sh.add(span("g", "root"))
    assert "root" in sh.answered


def _model_calls(partials: list) -> int:  # type: ignore[type-arg]
    return sum(
        agg.requests
        for p in partials
        if p.series.startswith('["@tokens","model"')
        for wid, agg in p.windows.items()
        if wid.startswith("10s@")
    )


@pytest.mark.parametrize("server_first", [True, False], ids=["server-first", "caller-first"])
def test_a_call_split_over_two_messages_counts_once(server_first: bool) -> None:
    """An app's call and the model server's span of it are two LLM spans with usage; in one
    message the outermost counts, across messages the first to arrive does."""
    from spanwatch.pipeline.ingest.message import ingest_message
    from tests.builders import T0, default_preaggregator, span, traces

    usage = {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}
    app = span(
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "qwen", **usage},
        span_id=b"\x01" * 8,
        end=T0 + 3 * 10**9,
    )
    http = span({"http.request.method": "POST"}, name="POST", span_id=b"\x02" * 8)
    http.parent_span_id = app.span_id
    engine = span(
        {"gen_ai.request.model": "qwen", **usage}, span_id=b"\x03" * 8, name="llm_request"
    )
    engine.parent_span_id = http.span_id
    caller = ingest_message(traces(app, http, service="bot").SerializeToString()).spans
    served = ingest_message(traces(engine, service="vllm").SerializeToString()).spans
    pre = default_preaggregator()
    first, second = (served, caller) if server_first else (caller, served)
    partials = pre.add_message(0, 0, first) + pre.add_message(0, 1, second)
    assert _model_calls(partials) == 1
    together = default_preaggregator().add_message(0, 0, caller + served)
    assert _model_calls(together) == 1
