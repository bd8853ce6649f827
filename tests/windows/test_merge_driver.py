"""The merge side of the windows as a pure driver (pipeline/windows/driver.py WindowsMerge):
each partials message in, the merge agent's commands out, with no broker."""

from __future__ import annotations

from typing import Any

import orjson

from spanwatch.devtools.traffic import TrafficGenerator
from spanwatch.pipeline.common.durations import NS
from spanwatch.pipeline.config import Settings, merge_stage, preaggregator
from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.tokens.settings import BudgetSettings, TokensSettings
from spanwatch.pipeline.windows.driver import WindowsMerge
from spanwatch.pipeline.windows.merge import WindowOutput
from spanwatch.pipeline.windows.partial import bundles
from tests.builders import Clock

T0 = 1_700_000_000 * NS
PARTS = 1  # one partials partition: every series is owned here


def _setup(
    settings: Settings, clock: Clock, runaway_every: int = 0
) -> tuple[WindowsMerge, list[dict[str, Any]]]:
    """The driver over an in-memory store, and the bundle values of 10 source messages
    (every ``runaway_every``-th trace an agent in a tool loop)."""
    pre = preaggregator(settings, lambda: T0 + 3600 * NS)
    gen = TrafficGenerator(3, runaway_every=runaway_every)
    values = []
    for offset in range(10):
        data = next(gen.batches(40, T0 + offset * NS, spread_ns=NS)).traces_data()
        partials = pre.add_message(0, offset, ingest_message(data.SerializeToString()).spans)
        values += [orjson.loads(v) for v in bundles(partials, PARTS).values()]
    stage = merge_stage({}, settings)
    stage.clock = clock
    out = WindowOutput(pre.keyer, smallest=settings.metrics.window_settings().smallest.name)
    return WindowsMerge(stage, out), values


def _wm(ns: int) -> dict[str, Any]:
    return {"type": "wm", "src": 0, "wm": ns, "n_src": 1}


def test_a_watermark_past_the_windows_closes_them_hooks_first_then_the_sends() -> None:
    clock = Clock()
    driver, values = _setup(Settings(), clock)
    for offset, value in enumerate(values):
        cmds = driver.message(0, offset, value)
        assert not cmds.windows and not cmds.black_holes
    assert driver.message(0, len(values), _wm(T0 - 600 * NS)).emits == []  # none has ended
    cmds = driver.message(0, len(values) + 1, _wm(T0 + 3600 * NS))
    kinds = {e.kind for e in cmds.emits}
    assert {"metrics", "tokens"} <= kinds
    metrics = [e for e in cmds.emits if e.kind == "metrics"]
    # every closed golden-signal window goes to the hooks, with the record that is sent
    assert [r for _, r in cmds.windows] == [e.record for e in metrics]
    assert all(e.key == c.series.encode() for (c, _), e in zip(cmds.windows, metrics, strict=True))
    # the partition's top consumers follow its closed token windows
    assert cmds.emits[-1].kind == "tokens" and cmds.emits[-1].key == b"top"
    windows = sum(e.key != b"top" for e in cmds.emits)
    assert driver.counters()["windows_closed_total"] == windows > 0
    # a replay of the same watermark closes nothing twice
    assert driver.message(0, len(values) + 2, _wm(T0 + 3600 * NS)).emits == []


def test_state_is_saved_only_when_due_and_then_the_offset_may_commit() -> None:
    clock = Clock()
    driver, values = _setup(Settings(), clock)
    assert driver.message(0, 0, values[0]).save is None  # not due: offset 0 may not commit
    clock.t += 0.5
    assert driver.message(0, 1, values[1]).save is None
    clock.t += 0.5  # metrics.state_flush_interval: 1s since the partition was first seen
    saved = driver.message(0, 2, values[2]).save
    assert saved is not None
    keys = [k for k, _ in saved]
    assert keys and all(v is None or v["partition"] == 0 for _, v in saved)
    assert driver.counters()["series_held"] >= len({k for k in keys if not k.startswith("__wm__")})
    clock.t += 0.1
    assert driver.message(0, 3, values[3]).save is None  # saved again only a second later


def test_a_trace_over_its_budget_is_one_black_hole_record_sent_on_tokens() -> None:
    tight = BudgetSettings(
        max_llm_calls=2,
        max_tool_calls=None,
        max_tokens=None,
        max_tokens_per_minute=None,
        max_agent_depth=None,
        max_repeated_tool_calls=None,
        max_same_tool_calls=None,
    )
    settings = Settings(tokens=TokensSettings(trace_budgets=tight))
    driver, values = _setup(settings, Clock(), runaway_every=2)
    found = []
    for offset, value in enumerate(values):
        cmds = driver.message(0, offset, value)
        found += cmds.black_holes
        holes = [e for e in cmds.emits if e.record.get("type") == "black_hole"]
        assert [e.record for e in holes] == cmds.black_holes
        assert all(e.kind == "tokens" for e in holes)
    assert found and all(r["budget"] == "max_llm_calls" for r in found)
    assert {r["entity"]["kind"] for r in found} == {"trace"}
    # one record per trace and budget, however many messages carried its calls
    assert len({r["entity"]["id"] for r in found}) == len(found)
    assert driver.counters()["black_holes_total"] == len(found)


def test_a_single_partial_outside_a_bundle_is_merged_too() -> None:
    driver, values = _setup(Settings(), Clock())
    one = values[0]["partials"][0]
    driver.message(0, 0, one)
    again = driver.message(0, 1, one)  # the same source offset again: a duplicate
    assert again.emits == []
    assert driver.counters()["partials_duplicate_total"] == 1
