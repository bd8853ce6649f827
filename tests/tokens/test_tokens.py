"""Token accounting, prices and black holes (no broker)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from spanwatch.pipeline.common.durations import NS
from spanwatch.pipeline.common.errors import ConfigError
from spanwatch.pipeline.config import TokensSettings
from spanwatch.pipeline.ingest.spans import Layer, LlmSpan
from spanwatch.pipeline.tokens.blackhole import Activity, Call
from spanwatch.pipeline.tokens.burn import (
    TokenCounts,
    counted_calls,
    counted_tools,
    merge_top,
    top_consumers,
)
from spanwatch.pipeline.tokens.pricing import DEFAULT_PRICES, PriceTable
from spanwatch.pipeline.tokens.settings import BudgetSettings
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.preaggregate import PreAggregator
from spanwatch.pipeline.windows.spec import WindowSettings, WindowSpec
from spanwatch.pipeline.windows.state import SeriesState, close_offline
from tests.builders import llm_span

T0 = 1_700_000_000 * NS
PRICES = PriceTable.parse(
    {
        "currency": "USD",
        "models": [
            {"match": "gpt-4o-mini*", "input": 0.15, "output": 0.60, "cache_read": 0.075},
            {"match": "qwen*", "input": 4, "output": 12, "currency": "CNY"},
        ],
    }
)


span = llm_span


# ------------------------------------------------------------------------------ prices


def test_shipped_price_table_loads_and_prices_exactly() -> None:
    table = PriceTable.load(DEFAULT_PRICES)
    price = table.lookup("gpt-4o-mini-2024-07-18")
    assert price is not None and price.currency == "USD"
    # 1000 input of which 500 cached, 200 output: 500*0.15 + 500*0.075 + 200*0.60 per million
    assert price.cost_nanos(1000, 200, 500, 0) == 232_500
    assert table.lookup("llama-3.1-8b-instruct") is None  # unpriced, never zero
    assert TokensSettings().price_table().prices == table.prices


@pytest.mark.parametrize(
    ("doc", "messages"),
    [
        (
            {"currency": "XYZ", "models": [{"match": "m", "input": 1, "output": 1}]},
            [
                "<prices>: currency: unknown currency 'XYZ'",
                "<prices>: models[0].currency: unknown currency 'XYZ'",
            ],
        ),
        (
            {"models": [{"match": "m", "input": -1, "output": 1}]},
            ["<prices>: models[0].input: must be a non-negative number, got -1"],
        ),
        (
            {"models": [{"match": "gpt-[4o", "input": 1, "output": 1}]},
            ["<prices>: models[0].match: bad pattern 'gpt-[4o': unbalanced brackets"],
        ),
        (
            {"models": [{"match": "m", "input": "cheap", "output": 1, "extra": 2}]},
            [
                "<prices>: models[0]: unknown keys ['extra']",
                "<prices>: models[0].input: not a number: 'cheap'",
            ],
        ),
        (
            {"models": [{"input": 1}]},
            [
                "<prices>: models[0].match: must be a model name or glob",
                "<prices>: models[0].output: required (price per million tokens)",
            ],
        ),
        ({"models": []}, ["<prices>: models: must be a non-empty list"]),
    ],
)
def test_price_table_errors_are_precise_and_complete(
    doc: dict[str, Any], messages: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        PriceTable.parse(doc)
    assert str(err.value).splitlines()[1:] == [f"  {m}" for m in messages]


def test_broken_price_file(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("models: [")
    with pytest.raises(ConfigError, match="invalid YAML"):
        PriceTable.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        PriceTable.load(tmp_path / "missing.yaml")


# ----------------------------------------------------------------------------- counting


def test_one_call_seen_at_three_layers_is_counted_once() -> None:
    agent = span(
        "a", layer=Layer.AGENT, operation="invoke_agent", input_tokens=999, output_tokens=999
    )  # an aggregate of its children: never counted
    client = span("c", "a", input_tokens=100, output_tokens=20, request_model="gpt-4o-mini")
    gateway = span("g", "c", layer=Layer.GATEWAY, input_tokens=100, output_tokens=20)
    server = span(
        "s",
        "g",
        layer=Layer.MODEL_SERVER,
        operation="inference",
        input_tokens=100,
        output_tokens=20,
    )
    lone_server = span(
        "x",
        layer=Layer.MODEL_SERVER,
        operation="inference",
        input_tokens=5,
        output_tokens=1,
        trace_id="u" * 32,
    )
    assert [s.span_id for s in counted_calls([agent, client, gateway, server, lone_server])] == [
        "c",
        "x",
    ]


def test_tool_calls_once() -> None:
    a1 = span("a1", layer=Layer.AGENT, operation="invoke_agent")
    a2 = span("a2", "a1", layer=Layer.AGENT, operation="invoke_agent")
    tool = span("t", "a2", layer=Layer.TOOL, operation="execute_tool", tool_name="fetch")
    mcp = span("m", "t", layer=Layer.TOOL, operation="execute_tool", span_kind="server")
    assert [s.span_id for s in counted_tools([a1, a2, tool, mcp])] == ["t"]


def test_token_counts_keep_kinds_apart_and_flag_unpriced() -> None:
    c = TokenCounts()
    c.add(
        span(
            "1",
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=500,
            reasoning_tokens=50,
            request_model="gpt-4o-mini",
        ),
        PRICES,
    )
    c.add(span("2", input_tokens=10, output_tokens=5, request_model="llama-3"), PRICES)
    c.add(span("3", input_tokens=1000, output_tokens=0, request_model="qwen-max"), PRICES)
    res = c.result(10.0)
    assert (
        res["input_tokens"],
        res["output_tokens"],
        res["cache_read_tokens"],
        res["reasoning_tokens"],
    ) == (2010, 205, 500, 50)
    assert res["cost_nanos"] == {"USD": 232_500, "CNY": 4_000_000}
    assert res["unpriced_requests"] == 1 and res["unpriced_tokens"] == 15
    assert res["unpriced_models"] == {"llama-3": 1}
    again = TokenCounts.from_dict(c.to_dict())
    assert again.to_dict() == c.to_dict()


def _messages(seed: int, n: int = 40) -> list[tuple[int, int, list[LlmSpan]]]:
    rng = random.Random(seed)
    out, offsets = [], [0, 0, 0]
    for i in range(n):
        part = rng.randrange(3)
        spans = [
            span(
                f"{i:04d}{j:04d}{rng.getrandbits(32):08x}",
                trace_id=f"{i:032x}",
                end_ns=T0 + rng.randrange(600) * NS,
                input_tokens=rng.randrange(5000),
                output_tokens=rng.randrange(800),
                user_id=f"u{rng.randrange(5)}",
                session_id=f"s{rng.randrange(8)}",
                request_model=rng.choice(["gpt-4o-mini", "qwen-72b", "llama"]),
            )
            for j in range(rng.randrange(1, 15))
        ]
        out.append((part, offsets[part], spans))
        offsets[part] += 1
    return out


def test_sum_over_windows_equals_the_input_exactly_per_model_and_user() -> None:
    ws = WindowSettings(
        specs=(WindowSpec.parse("10s"), WindowSpec.parse("1m/30s")),
        allowed_lateness_ns=1000 * NS,
        idle_timeout_ns=30 * NS,
    )  # out-of-order input, none late
    pre = PreAggregator(ws, SeriesKeyer(), lambda: T0 + 10**6 * NS, PRICES, signals=False)
    msgs = _messages(5)
    partials = [p for part, off, spans in msgs for p in pre.add_message(part, off, spans)]
    redelivered = partials + [p for p in partials if p.source == 2]  # at-least-once
    closed = close_offline(sorted(redelivered, key=lambda p: (p.source, p.offset)))
    truth: dict[tuple[str, str], int] = {}
    for _, _, spans in msgs:
        for s in spans:
            for key in (("model", s.request_model), ("user", s.user_id)):
                truth[key] = truth.get(key, 0) + (s.input_tokens or 0) + (s.output_tokens or 0)
    got: dict[tuple[str, str], int] = {}
    for c in closed:
        kind, entity = c.series.split('"')[3], c.series.split('"')[5]
        if c.spec.name == "10s" and kind in ("model", "user"):
            got[(kind, entity)] = (
                got.get((kind, entity), 0) + c.aggregate.input_tokens + c.aggregate.output_tokens
            )
    assert got == truth
    hop = sum(
        c.aggregate.requests for c in closed if c.spec.name == "1m/30s" and '"model"' in c.series
    )
    assert hop == 2 * sum(len(s) for _, _, s in msgs)  # every span is in two hopping windows


# -------------------------------------------------------------------------- black holes


def _loop(n: int, *, same_args: bool, t0: int = T0, step: int = 5 * NS) -> list[Call]:
    calls = []
    for i in range(n):
        t = t0 + i * step
        calls.append(Call(t, "llm", f"l{i}", 3000, "gpt-4o-mini", depth=1))
        calls.append(
            Call(
                t + NS,
                "tool",
                f"t{i}",
                tool="search_docs",
                args_hash="same" if same_args else f"h{i}",
                depth=1,
            )
        )
    return calls


def test_runaway_tool_loop_is_flagged_within_the_configured_calls() -> None:
    budgets = BudgetSettings(max_repeated_tool_calls=5).budgets()
    act = Activity()
    fired_at = None
    for i, call in enumerate(_loop(20, same_args=True)):
        events = act.apply([call], budgets)
        if events and fired_at is None:
            fired_at, event, tool_calls = i, events[0], act.tool_calls
    assert fired_at is not None and event["budget"] == "max_repeated_tool_calls"
    assert tool_calls == 6  # flagged at the 6th identical call, before the trace ended
    ev = event["evidence"]
    assert ev["repeated_tool"] == {
        "tool": "search_docs",
        "args_hash": "same",
        "in_a_row": 6,
        "in_window": 6,
    }
    assert len(ev["top_calls"]) == 5 and ev["token_curve"]
    assert act.apply(_loop(3, same_args=True, t0=T0 + 10**4 * NS), budgets) == []  # once


def test_long_healthy_agent_run_is_not_flagged() -> None:
    act = Activity()
    assert act.apply(_loop(40, same_args=False, step=20 * NS), BudgetSettings().budgets()) == []
    assert act.llm_calls == 40 and act.tool_calls == 40


def test_token_velocity_and_budget_limits() -> None:
    act = Activity()
    burst = [Call(T0 + i * NS, "llm", f"b{i}", 30_000) for i in range(8)]
    events = act.apply(burst, BudgetSettings(max_tokens_per_minute=200_000).budgets())
    assert [e["budget"] for e in events] == ["max_tokens_per_minute"]
    assert events[0]["value"] == 210_000


def test_activity_state_survives_a_round_trip() -> None:
    act = Activity()
    act.apply(_loop(4, same_args=True), BudgetSettings().budgets())
    again = Activity.from_dict(act.to_dict())
    assert again.to_dict() == act.to_dict()
    more = _loop(3, same_args=True, t0=T0 + 100 * NS)
    assert again.apply(more, BudgetSettings().budgets()) == act.apply(
        more, BudgetSettings().budgets()
    )


def test_session_state_applies_calls_only_once() -> None:
    ws = WindowSettings((WindowSpec.parse("10s"),), 5 * NS, 30 * NS)
    pre = PreAggregator(ws, SeriesKeyer(), lambda: T0, PRICES, signals=False)
    spans = [span("c1", input_tokens=10, output_tokens=1, session_id="s", end_ns=T0 + NS)]
    [p] = [p for p in pre.add_message(0, 0, spans) if '"session"' in p.series]
    st = SeriesState(kind="tokens")
    assert st.apply(p) and not st.apply(p)
    st.apply_calls(p, BudgetSettings().budgets())
    assert st.activity is not None and st.activity.llm_calls == 1


def test_top_consumers_are_exact_across_partitions() -> None:
    def rec(kind: str, ident: str, tokens: int, usd: int) -> dict[str, Any]:
        return {
            "entity": {"kind": kind, "id": ident},
            "window": {"name": "1m", "start_ns": 0},
            "total_tokens": tokens,
            "cost_nanos": {"USD": usd},
            "cost": {"USD": usd / 1e9},
        }

    p0 = top_consumers([rec("user", "a", 50, 5), rec("user", "b", 10, 90)], 2)
    p1 = top_consumers([rec("user", "c", 30, 1), rec("user", "d", 70, 2)], 2)
    [t0], [t1] = p0, p1
    assert [e["id"] for e in merge_top([t0["by_tokens"], t1["by_tokens"]], 2, "tokens")] == [
        "d",
        "a",
    ]
    assert [
        e["id"] for e in merge_top([t0["by_cost"]["USD"], t1["by_cost"]["USD"]], 1, "cost")
    ] == ["b"]
