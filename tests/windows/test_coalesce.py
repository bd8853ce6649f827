"""Partials of several source messages sent as one per series (pipeline/windows/coalesce.py): any
split of the messages into batches closes the same windows and fires the same black-hole
budgets with the same evidence as one message at a time; a successor or a thawed worker
sending one message at a time over a predecessor's batches counts every message once."""

from __future__ import annotations

import itertools
import random
from typing import Any

import orjson
import pytest

from spanwatch.devtools.traffic import TrafficGenerator
from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.tokens.settings import BudgetSettings
from spanwatch.pipeline.windows.coalesce import Coalescer, coalesce
from spanwatch.pipeline.windows.merge import MergeStage
from spanwatch.pipeline.windows.partial import Partial
from spanwatch.pipeline.windows.state import ClosedWindow, SeriesState
from tests.builders import Clock, default_preaggregator, merge_stage

NS = 10**9
END = 2**62


def _messages(n: int = 30, seed: int = 5) -> list[list[Partial]]:
    """Per-message partials of ``n`` consecutive messages of source partition 0 (golden
    signals and tokens; traces and sessions with calls, some of them runaway loops)."""
    return [made for made, _ in _messages_and_spans(n, seed)]


def _messages_and_spans(n: int = 30, seed: int = 5) -> list[tuple[list[Partial], int]]:
    pre = default_preaggregator()
    batches = TrafficGenerator(seed=seed, runaway_every=4).batches(
        30, 1_700_000_000 * NS, spread_ns=40 * NS
    )
    out = []
    for i in range(n):
        spans = ingest_message(next(batches).traces_data().SerializeToString()).spans
        out.append((pre.add_message(0, i, spans), len(spans)))
    return out


def _copy(made: list[Partial]) -> list[Partial]:
    """Through the wire, as the owner gets them (coalesce merges into the first message's
    partials, so every run starts from its own copies)."""
    return [Partial.from_dict(orjson.loads(p.to_bytes())) for p in made]


def _stage() -> MergeStage:
    budgets = BudgetSettings(
        max_llm_calls=3, max_repeated_tool_calls=3, max_same_tool_calls=4
    ).budgets()
    return merge_stage(budgets=budgets, clock=Clock())


def _apply(stage: MergeStage, sends: list[list[Partial]]) -> list[tuple[str, Any]]:
    holes: list[tuple[str, Any]] = []
    for made in sends:
        holes += stage.apply_bundle(0, _copy(made))
    return holes


def _close(stage: MergeStage) -> list[Any]:
    closed: list[ClosedWindow] = stage.apply_watermark(0, 0, END, 1)
    return sorted(
        (c.series, c.spec.name, c.start_ns, repr(c.aggregate.result(1.0))) for c in closed
    )


def _split(n: int, rng: random.Random) -> list[tuple[int, int]]:
    """Consecutive [lo, hi) ranges covering 0..n."""
    cuts = sorted(rng.sample(range(1, n), rng.randint(1, n // 3)))
    bounds = [0, *cuts, n]
    return list(itertools.pairwise(bounds))


def _batched(messages: list[list[Partial]], ranges: list[tuple[int, int]]) -> list[list[Partial]]:
    return [coalesce(_copy(m) for m in messages[lo:hi]) for lo, hi in ranges]


def _by_entity(holes: list[tuple[str, Any]]) -> list[Any]:
    return sorted((sid, orjson.dumps(e, option=orjson.OPT_SORT_KEYS)) for sid, e in holes)


@pytest.mark.parametrize("seed", range(6))
def test_any_split_into_batches_closes_the_same_windows_and_fires_the_same_budgets(
    seed: int,
) -> None:
    messages = _messages()
    one_by_one = _stage()
    holes = _apply(one_by_one, messages)
    reference = _close(one_by_one)
    assert holes and reference  # runaway traces crossed budgets; windows closed
    ranges = _split(len(messages), random.Random(seed))
    batched = _stage()
    batched_holes = _apply(batched, _batched(messages, ranges))
    assert _close(batched) == reference
    assert _by_entity(batched_holes) == _by_entity(holes)  # same budgets, same evidence
    sent = sum(len(b) for b in _batched(messages, ranges))
    assert sent < sum(len(m) for m in messages)  # the point: fewer partials
    assert batched.counters["partials_overlap_total"] == 0


@pytest.mark.parametrize("committed", [0, 7, 12])
def test_a_successor_one_message_at_a_time_over_uncommitted_batches_counts_each_once(
    committed: int,
) -> None:
    """The predecessor sent batches [0,5) [5,12) [12,20) and committed only ``committed``
    before it died; the successor re-reads from there one message at a time (its messages
    are below its first end offset), then batches again."""
    messages = _messages()
    reference_stage = _stage()
    holes = _apply(reference_stage, messages)
    reference = _close(reference_stage)
    stage = _stage()
    sent = _apply(stage, _batched(messages, [(0, 5), (5, 12), (12, 20)]))
    sent += _apply(stage, messages[committed:20])  # one at a time
    sent += _apply(stage, _batched(messages, [(20, 26), (26, 30)]))
    assert _close(stage) == reference
    assert {(s, e["budget"]) for s, e in sent} == {(s, e["budget"]) for s, e in holes}
    assert stage.counters["partials_duplicate_total"] > 0
    assert stage.counters["partials_overlap_total"] == 0


def test_a_thawed_workers_batch_after_the_successors_messages_is_skipped() -> None:
    """A frozen worker sends, after its thaw, a batch read before the freeze; the successor
    already sent some of those messages one at a time. The batch straddles what was applied:
    it is skipped (counted), and the successor's messages cover it."""
    messages = _messages()
    reference_stage = _stage()
    _apply(reference_stage, messages)
    reference = _close(reference_stage)
    stage = _stage()
    _apply(stage, _batched(messages, [(0, 10)]))
    _apply(stage, messages[10:13])  # the successor, one at a time
    _apply(stage, _batched(messages, [(10, 18)]))  # the thawed worker's batch
    _apply(stage, messages[13:])
    assert stage.counters["partials_overlap_total"] > 0
    assert _close(stage) == reference


class Sender:
    """One worker's ingest side for source partition 0 as pipeline.windows.coalesce has it: batches
    by time and weight, a confirmed commit before more than ``max_weight`` spans would be sent
    and not committed; ``committed`` is what the broker holds."""

    def __init__(self, messages: list[tuple[list[Partial], int]], start: int, committed: int):
        self.messages, self.next, self.committed = messages, start, committed
        self.clock = Clock()
        self.c = Coalescer(1.0, max_weight=1000, clock=self.clock)
        self.evicted = False

    def step(self, rng: random.Random) -> list[list[Partial]] | None:
        """Read the next message; the sends it makes (None: stopped, or nothing left)."""
        if self.next >= len(self.messages):
            return None
        made, spans = self.messages[self.next]
        self.clock.t += rng.choice([0.1, 0.3, 0.6])
        sends: list[list[Partial]] = []
        for b in self.c.add(0, self.next, _copy(made), spans, 0):
            if self.c.needs_confirm(b):
                if self.evicted:  # the broker refuses an evicted member's commit
                    self.next = len(self.messages)
                    return sends
                self.committed = max(self.committed, self.c.last_sent[0] + 1)
                self.c.confirmed(0)
            self.c.sent(b, self.c.epoch)
            sends.append(b.partials)
            if rng.random() < 0.3:  # faust's periodic commit of what was allowed
                self.committed = max(self.committed, b.last + 1)
        self.next += 1
        return sends

    def rest(self) -> list[list[Partial]]:
        return [b.partials for b in self.c.take(0)]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("zombie", [False, True])
def test_a_change_of_owner_at_any_point_counts_every_message_once(seed: int, zombie: bool) -> None:
    """The first owner stops at a random message (crash: what it held is lost; or eviction:
    a zombie goes on until it would need a commit, its sends interleaved with the new
    owner's); the new owner re-reads from the committed offset. Windows and budgets equal
    one message at a time, and no range ever straddles another."""
    rng = random.Random(seed)
    messages = _messages_and_spans(40, seed=seed)
    reference_stage = _stage()
    holes = _apply(reference_stage, [m for m, _ in messages])
    reference = _close(reference_stage)
    stage = _stage()
    got: list[tuple[str, Any]] = []
    first = Sender(messages, 0, 0)
    for _ in range(rng.randrange(5, 35)):
        got += _apply(stage, first.step(rng) or [])
    second = Sender(messages, first.committed, first.committed)
    first.evicted = True
    while True:
        sends = second.step(rng)
        if zombie and rng.random() < 0.5:
            sends = (first.step(rng) or []) + (sends or [])
        if sends is None:
            break
        got += _apply(stage, sends)
    got += _apply(stage, second.rest())
    assert _close(stage) == reference
    assert {(s, e["budget"]) for s, e in got} == {(s, e["budget"]) for s, e in holes}
    assert stage.counters["partials_overlap_total"] == 0 or zombie


def test_admit_tells_new_duplicate_and_overlapping_ranges_apart() -> None:
    state = SeriesState()
    assert state.admit(Partial("s", 0, 9, {}, first=5)) == "new"
    state.apply(Partial("s", 0, 9, {}, first=5))
    assert state.admit(Partial("s", 0, 9, {})) == "duplicate"
    assert state.admit(Partial("s", 0, 7, {}, first=2)) == "duplicate"
    assert state.admit(Partial("s", 0, 12, {}, first=9)) == "overlap"
    assert state.admit(Partial("s", 0, 12, {}, first=10)) == "new"
    assert state.admit(Partial("s", 1, 0, {})) == "new"  # another source partition


def test_the_range_travels_on_the_wire_and_one_message_stays_as_before() -> None:
    p = Partial("s", 2, 9, {}, "tokens", first=4)
    assert Partial.from_dict(orjson.loads(p.to_bytes())).lo == 4
    one = Partial("s", 2, 9, {})
    assert "first" not in one.to_dict() and one.lo == 9


def _p(series: str, off: int) -> list[Partial]:
    return [Partial(series, 0, off, {})]


def _sent(c: Coalescer, batches: list[Any]) -> list[tuple[int, int]]:
    """(first offset, last offset) of each batch, recorded as sent."""
    for b in batches:
        c.sent(b, c.epoch)
    return [(min(p.lo for p in b.partials), b.last) for b in batches]


def test_after_an_assignment_a_partition_goes_one_message_at_a_time_for_max_weight_spans() -> None:
    clock = Clock()
    c = Coalescer(0.5, max_weight=100, clock=clock)
    assert c.add(0, 3, _p("a", 3), 49, 0) == []  # held, but kept apart: 50 seen
    assert c.add(0, 4, _p("a", 4), 49, 0) == []  # 100 seen
    (singles,) = c.add(0, 5, _p("a", 5), 9, 11)  # past max_weight: batches from here
    assert (singles.last, singles.messages, singles.weight) == (4, 2, 100)
    assert [(p.lo, p.offset) for p in singles.partials] == [(3, 3), (4, 4)]  # never merged
    assert c.add(0, 6, _p("a", 6), 9, 12) == []
    clock.t = 0.5
    (batch,) = c.add(0, 7, _p("a", 7), 9, 10)
    assert (batch.last, batch.messages, batch.weight, batch.newest) == (7, 3, 30, 12)
    assert [(p.lo, p.offset) for p in batch.partials] == [(5, 7)]
    c.assigned()  # the next owner (or this one again) starts one message at a time
    assert c.add(0, 5, _p("a", 5), 9, 0) == []
    assert c.add(0, 6, _p("a", 6), 9, 0) == []
    (again,) = c.take(0)
    assert [(p.lo, p.offset) for p in again.partials] == [(5, 5), (6, 6)]


def test_one_message_partials_held_together_are_sent_at_the_bounds_and_when_due() -> None:
    clock = Clock()
    c = Coalescer(0.5, max_weight=100, clock=clock)
    assert c.add(0, 0, _p("a", 0), 39, 0) == []
    (full,) = c.add(0, 1, _p("a", 1) + _p("b", 1), 69, 0)  # 40 + 70 > 100: the first goes
    assert (full.last, [(p.series, p.lo) for p in full.partials]) == (0, [("a", 0)])
    clock.t = 0.5
    assert c.due() == [0]
    (due,) = c.take(0)
    assert [(p.series, p.lo, p.offset) for p in due.partials] == [("a", 1, 1), ("b", 1, 1)]
    off = Coalescer(0.0)  # coalescing off: each message alone, at once, as before
    (alone,) = off.add(0, 5, _p("a", 5), 10, 0)
    assert (alone.last, alone.messages) == (5, 1)


def test_a_batch_carries_its_messages_records_in_order_and_no_others() -> None:
    clock = Clock()
    c = Coalescer(0.5, max_weight=40, clock=clock)
    out = []
    for off in range(8):  # kept apart while fewer than 40 spans were seen, then coalesced
        recs = [f"{off}.{i}" for i in range(9)]
        out += _sent_records(c, c.add(0, off, _p("a", off), 9, 0, recs))
    out += _sent_records(c, c.take(0))
    flat = [r for _, records in out for r in records]
    assert flat == [f"{off}.{i}" for off in range(8) for i in range(9)]  # each once, in order
    assert [last for last, _ in out] == [3, 7]  # twice 4 held messages of 10 spans
    c.add(0, 8, _p("a", 8), 9, 0, ["held"])
    c.assigned()  # dropped with the partials: read again from the committed offset
    assert c.take(0) == []


def _sent_records(c: Coalescer, batches: list[Any]) -> list[tuple[int, list[Any]]]:
    _sent(c, batches)
    return [(b.last, b.records) for b in batches]


def test_a_batch_never_holds_more_than_max_weight_spans() -> None:
    c = Coalescer(60.0, max_weight=100, clock=Clock())
    c.seen[0] = 100  # past the first spans after the assignment
    assert c.add(0, 0, _p("a", 0), 59, 0) == []
    (batch,) = c.add(0, 1, _p("a", 1), 59, 0)  # 60 + 60 > 100: the first goes alone
    assert (batch.last, batch.weight) == (0, 60)
    assert list(c.held) == [0]


def test_more_than_max_weight_sent_and_not_committed_needs_a_confirmed_commit() -> None:
    c = Coalescer(0.0, max_weight=100, clock=Clock())
    (first,) = c.add(0, 0, _p("a", 0), 59, 0)
    assert not c.needs_confirm(first)
    c.sent(first, c.epoch)
    (second,) = c.add(0, 1, _p("a", 1), 59, 0)
    assert c.needs_confirm(second) and c.last_sent[0] == 0  # commit up to 0 first
    c.confirmed(0)
    assert not c.needs_confirm(second)
    c.sent(second, c.epoch - 1)  # sent across a rebalance: not this epoch's
    assert c.last_sent[0] == 0


def test_coalescing_off_sends_each_message_alone() -> None:
    (batch,) = Coalescer(0.0).add(0, 5, _p("a", 5), 10, 0)  # off: each message alone
    assert (batch.last, batch.messages, batch.weight) == (5, 1, 11)


def test_a_suspect_worker_sends_what_it_holds_then_one_message_at_a_time() -> None:
    clock = Clock()
    c = Coalescer(10.0, max_weight=10, resume_after_s=30.0, clock=clock)
    c.seen[0] = 10
    c.add(0, 0, _p("a", 0), 0, 0)
    c.add(0, 1, _p("a", 1), 0, 0)
    c.suspect()
    # what it holds goes as it is; then one message at a time (held together, kept apart)
    assert _sent(c, c.add(0, 2, _p("a", 2), 0, 0)) == [(0, 1)]
    assert c.add(0, 3, _p("a", 3), 0, 0) == []
    clock.t = 30.0  # no assignment came: the group kept this worker
    (singles,) = c.add(0, 4, _p("a", 4), 0, 0)
    assert [(p.lo, p.offset) for p in singles.partials] == [(2, 2), (3, 3)]
    assert list(c.held) == [0]  # offset 4 waits for a batch again
    c.suspect()
    c.assigned()  # an assignment ends it too (and what was held is dropped: read again)
    assert not c.held and c.suspended_at is None


def test_held_partials_are_sent_at_the_bound_and_due_after_the_interval() -> None:
    clock = Clock()
    c = Coalescer(1.0, max_partials=3, clock=clock)
    c.seen[0] = c.max_weight
    assert c.add(0, 0, _p("a", 0) + _p("b", 0), 0, 0) == []
    clock.t = 1.0
    assert c.due() == [0]
    clock.t = 0.0
    (batch,) = c.add(0, 1, _p("c", 1), 0, 0)  # 3 held: the bound
    assert sorted(p.series for p in batch.partials) == ["a", "b", "c"]


def _spans(n: int = 30, seed: int = 5) -> list[list[Any]]:
    batches = TrafficGenerator(seed=seed, runaway_every=4).batches(
        30, 1_700_000_000 * NS, spread_ns=40 * NS
    )
    return [ingest_message(next(batches).traces_data().SerializeToString()).spans for _ in range(n)]


@pytest.mark.parametrize("seed", range(4))
def test_spans_added_in_place_make_the_partials_coalescing_per_message_ones_makes(
    seed: int,
) -> None:
    """A coalesced batch takes each message's spans in place (``add_message(into=...)``),
    with no partial made and merged per message: the same partials as the per-message ones
    coalesced (windows, calls in message order, ranges), so the owner closes the same windows
    and fires the same budgets with the same evidence."""
    spans = _spans()
    ranges = _split(len(spans), random.Random(seed))
    per_message, in_place = default_preaggregator(), default_preaggregator()
    merged, added = [], []
    for lo, hi in ranges:
        merged.append(coalesce(per_message.add_message(0, i, spans[i]) for i in range(lo, hi)))
        into: dict[str, Partial] = {}
        for i in range(lo, hi):
            in_place.add_message(0, i, spans[i], into=into)
        added.append(list(into.values()))

    def state(sends: list[list[Partial]]) -> list[list[bytes]]:
        """Each partial with its aggregates' canonical state (every value bucketed: where
        values were bucketed along the way is not part of it)."""
        return [
            [
                orjson.dumps(
                    {**p.to_dict(), "windows": {w: a.to_dict() for w, a in p.windows.items()}},
                    option=orjson.OPT_SORT_KEYS,
                )
                for p in b
            ]
            for b in sends
        ]

    assert state(added) == state(merged)
    assert any(p.first >= 0 for b in added for p in b)  # ranges of several messages
    assert any(p.calls for b in added for p in b)
    a, b = _stage(), _stage()
    assert _by_entity(_apply(a, added)) == _by_entity(_apply(b, merged))
    assert _close(a) == _close(b)
