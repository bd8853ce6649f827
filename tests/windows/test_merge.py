"""The merge stage (pipeline/windows/merge.py): state in memory, saved now and then, and exact
after a crash: a successor that loads what was saved and applies the partials log again from any
point at or before the last save closes the same windows as a run without a crash."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from spanwatch.devtools.traffic import TrafficGenerator
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.tokens.settings import BudgetSettings
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.merge import MergeStage, WindowOutput
from spanwatch.pipeline.windows.partial import Partial
from spanwatch.pipeline.windows.state import ClosedWindow, close_offline
from tests.builders import Clock, default_preaggregator, merge_stage

NS = 10**9
END = 2**62  # a watermark past every window
Event = tuple[str, Any]  # ("bundle", [Partial]) or ("wm", source partition)


def _log(messages: int = 24, seed: int = 3) -> tuple[list[Event], list[Partial]]:
    """A partials log as one partials partition receives it: a bundle per source message
    (two source partitions, golden signals and tokens, trace and session calls), then the
    final watermark of each source partition."""
    pre = default_preaggregator()
    gen = TrafficGenerator(seed=seed, runaway_every=5)
    batches = gen.batches(40, 1_700_000_000 * NS, spread_ns=30 * NS)
    events: list[Event] = []
    partials: list[Partial] = []
    for i in range(messages):
        spans = ingest_message(next(batches).traces_data().SerializeToString()).spans
        made = pre.add_message(i % 2, i // 2, spans)
        events.append(("bundle", made))
        partials += made
    events += [("wm", 0), ("wm", 1)]
    return events, partials


def _stage(store: dict[Any, Any], clock: Clock | None = None, **kw: Any) -> MergeStage:
    return merge_stage(
        store, budgets=BudgetSettings(max_llm_calls=3).budgets(), clock=clock or Clock(), **kw
    )


def _save(store: dict[Any, Any], writes: list[tuple[Any, Any]]) -> None:
    """Apply a flush as the table would: through JSON, tombstones delete."""
    for key, value in writes:
        if value is None:
            store.pop(key, None)
        else:
            store[key] = orjson.loads(orjson.dumps(value))


def _run(
    stage: MergeStage, events: list[Event], start: int, stop: int, save_every: int = 0
) -> tuple[list[ClosedWindow], list[tuple[str, dict[str, Any]]], int | None]:
    """Apply events[start:stop] (their index is the partials offset); save every
    ``save_every`` events. Returns closed windows, black-hole events, last saved offset."""
    closed: list[ClosedWindow] = []
    holes: list[tuple[str, dict[str, Any]]] = []
    saved = None
    for offset in range(start, stop):
        kind, body = events[offset]
        if kind == "bundle":
            holes += stage.apply_bundle(0, body)
        else:
            closed += stage.apply_watermark(0, body, END, 2)
        if save_every and (offset + 1) % save_every == 0:
            _save(stage.store, stage.flush(0, offset))
            saved = offset
    return closed, holes, saved


def _records(closed: list[ClosedWindow]) -> list[Any]:
    return sorted(
        (c.series, c.spec.name, c.start_ns, repr(c.aggregate.result(1.0))) for c in closed
    )


def test_windows_equal_the_offline_merge() -> None:
    events, partials = _log()
    closed, holes, _ = _run(_stage({}), events, 0, len(events), save_every=5)
    assert closed and _records(closed) == _records(close_offline(partials))
    assert holes  # the runaway agents' traces crossed max_llm_calls


@pytest.mark.parametrize("crash_after", [6, 13, 20])
@pytest.mark.parametrize("behind", [0, 3])
def test_a_successor_replaying_from_the_last_save_closes_the_same_windows(
    crash_after: int, behind: int
) -> None:
    events, partials = _log()
    store: dict[Any, Any] = {}
    # the first owner applies events 0..crash_after, saving every 4; what it applied after
    # its last save is lost with it
    _, holes_before, saved = _run(_stage(store), events, 0, crash_after + 1, save_every=4)
    assert saved is not None and saved < crash_after
    # the successor loads the saved states and re-reads the log from the committed offset:
    # the one after the last save, or ``behind`` events earlier (a commit not yet sent)
    successor = _stage(store)
    closed, holes_after, _ = _run(successor, events, saved + 1 - behind, len(events))
    assert _records(closed) == _records(close_offline(partials))
    assert successor.counters["partials_duplicate_total"] > 0 or behind == 0
    # every budget fires once per entity, before or after the crash (at least once)
    fired = {(sid, e["budget"]) for sid, e in holes_before + holes_after}
    _, reference, _ = _run(_stage({}), events, 0, len(events))
    assert fired == {(sid, e["budget"]) for sid, e in reference}


def test_a_save_writes_what_changed_with_its_offset_as_version() -> None:
    events, _ = _log(messages=4)
    store: dict[Any, Any] = {}
    stage = _stage(store)
    stage.apply_bundle(0, events[0][1])
    first = stage.flush(0, 0)
    assert first and all(v["v"] == 0 and v["partition"] == 0 for _, v in first)
    assert stage.flush(0, 1) == []  # nothing changed since
    stage.apply_bundle(0, events[1][1])
    second = dict(stage.flush(0, 1))
    touched = {p.series for p in events[1][1]}
    assert set(second) == touched and all(v["v"] == 1 for v in second.values())


def test_redelivered_partials_are_skipped_and_counted() -> None:
    events, _ = _log(messages=2)
    stage = _stage({})
    stage.apply_bundle(0, events[0][1])
    stage.apply_bundle(0, events[0][1])
    assert stage.counters["partials_duplicate_total"] == len(events[0][1])


def test_quiet_traces_and_sessions_are_forgotten_and_deleted_from_the_store() -> None:
    events, _ = _log(messages=6)
    store: dict[Any, Any] = {}
    stage = _stage(store)
    _run(stage, events, 0, 6, save_every=6)
    active = {k for k, v in store.items() if isinstance(v, dict) and "activity" in v}
    assert any('"trace"' in k for k in active) and any('"session"' in k for k in active)
    stage.idle_ns = 0  # every one is quiet once the final watermark closed its windows
    _run(stage, events, len(events) - 2, len(events))
    writes = stage.flush(0, len(events))
    assert {k for k, v in writes if v is None} == active
    assert stage.counters["activity_expired_total"] == len(active)
    _save(store, writes)
    assert not active & set(store)


def test_a_reset_loads_the_partition_again_from_the_store() -> None:
    events, _ = _log(messages=4)
    store: dict[Any, Any] = {}
    stage = _stage(store)
    _run(stage, events, 0, 2, save_every=2)
    stage.apply_bundle(0, events[2][1])  # applied, not saved
    held = stage.held(0)
    stage.reset()
    assert stage.held(0) == 0
    stage.partition(0)
    assert stage.held(0) < held or not events[2][1]
    stage.apply_bundle(0, events[2][1])  # re-applied from the log, not skipped
    assert stage.counters["partials_duplicate_total"] == 0


def test_a_save_is_due_every_flush_interval() -> None:
    clock = Clock()
    stage = _stage({}, clock, flush_interval_s=1.0)
    assert not stage.flush_due(0)  # nothing loaded, nothing to save
    stage.partition(0)
    clock.t = 0.5
    assert not stage.flush_due(0)
    clock.t = 1.0
    assert stage.flush_due(0)
    stage.flush(0, 9)
    assert not stage.flush_due(0)


def test_window_output_labels_records_and_counts_totals_once() -> None:
    _, partials = _log(messages=6)
    settings = Settings()
    out = WindowOutput(SeriesKeyer(settings.metrics.dimensions), smallest="10s", top_n=3)
    records = [out.record(c) for c in close_offline(partials)]
    metrics = [r for t, r in records if t == "metrics"]
    tokens = [r for t, r in records if t == "tokens"]
    assert metrics and set(metrics[0]["series"]) == set(settings.metrics.dimensions)
    assert {r["entity"]["kind"] for r in tokens} == {"model", "service", "user", "session"}
    # totals per model from the 10 s windows only: each call once, never per user
    per_model: dict[str, int] = {}
    for r in tokens:
        if r["entity"]["kind"] == "model" and r["window"]["name"] == "10s":
            per_model[r["entity"]["id"]] = per_model.get(r["entity"]["id"], 0) + r["input_tokens"]
    counted = {m: n for (k, m, t), n in out.token_totals.items() if k == "model" and t == "input"}
    assert per_model and counted == per_model
    assert not [k for k in out.token_totals if k[0] in ("user", "session")]
    tops = out.top(2, tokens)
    assert tops and all(t["partition"] == 2 and t["type"] == "top" for t in tops)
    hole = out.black_hole('["@tokens","trace","abc"]', {"budget": "max_llm_calls"})
    assert hole == {
        "type": "black_hole",
        "entity": {"kind": "trace", "id": "abc"},
        "budget": "max_llm_calls",
    }
