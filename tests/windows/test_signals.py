"""Golden signals: sketches, aggregates, windows, watermarks, partial merge (no broker)."""

from __future__ import annotations

import pickle
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanwatch.pipeline.common.durations import NS, parse_duration_ns
from spanwatch.pipeline.ingest.spans import Layer, LlmSpan
from spanwatch.pipeline.windows import golden as signals
from spanwatch.pipeline.windows.golden import OVERFLOW, SeriesKeyer, SignalAggregate, self_times
from spanwatch.pipeline.windows.partial import Partial
from spanwatch.pipeline.windows.preaggregate import PreAggregator
from spanwatch.pipeline.windows.sketch import QuantileSketch
from spanwatch.pipeline.windows.spec import PartitionClock, WindowSettings, WindowSpec
from spanwatch.pipeline.windows.state import SeriesState, Watermarks, close_offline
from tests.builders import llm_span

T0 = 1_700_000_000 * NS  # divisible by every window size used here


def rec(**kw: Any) -> LlmSpan:
    fields: dict[str, Any] = {
        "span_id": f"{random.getrandbits(64):016x}",
        "trace_id": "a" * 32,
        "name": "chat m",
        "request_model": "m",
    }
    return llm_span(**(fields | kw))


# ----------------------------------------------------------------------------- sketch


@pytest.mark.parametrize("dist", ["lognormal", "pareto", "exponential", "bimodal"])
def test_sketch_quantiles_within_one_percent_on_heavy_tails(dist: str) -> None:
    rng = np.random.default_rng(42)
    x = {
        "lognormal": lambda: rng.lognormal(-1.0, 1.5, 50_000),
        "pareto": lambda: (rng.pareto(1.2, 50_000) + 1) * 0.05,
        "exponential": lambda: rng.exponential(0.3, 50_000),
        "bimodal": lambda: np.concatenate(
            [rng.normal(0.2, 0.01, 25_000).clip(1e-3), rng.normal(8.0, 0.5, 25_000)]
        ),
    }[dist]()
    s = QuantileSketch(0.01)
    s.add_many(x)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        exact = float(np.quantile(x, q, method="lower"))
        got = s.quantile(q)
        assert got is not None and abs(got - exact) <= 0.01 * exact, (q, got, exact)


def test_sketch_edge_cases() -> None:
    s = QuantileSketch()
    assert s.quantile(0.5) is None
    s.add(0.0)
    assert s.quantile(0.99) == 0.0
    s.add(2.5)
    assert s.quantile(1.0) == pytest.approx(2.5, rel=0.01)
    with pytest.raises(ValueError):
        s.quantile(1.5)
    with pytest.raises(ValueError):
        QuantileSketch(0.0)
    big = QuantileSketch()
    big.add(1e12)
    assert big.quantile(0.5) == pytest.approx(1e12, rel=0.01)


def test_sketch_state_reads_back_through_json_in_both_forms() -> None:
    s = QuantileSketch()
    s.add_many([0.0, 0.2, 0.2, 3.5, 41.0])
    d = orjson.loads(orjson.dumps(s.to_dict()))
    assert d["keys"] == sorted(d["keys"]) and sum(d["counts"]) + d["zeros"] == 5
    assert QuantileSketch.from_dict(d) == s
    # state written by an earlier version (a changelog being restored): [key, count] pairs
    legacy = {k: v for k, v in d.items() if k not in ("keys", "counts")}
    legacy["buckets"] = [[k, c] for k, c in zip(d["keys"], d["counts"], strict=True)]
    assert QuantileSketch.from_dict(legacy) == s
    assert QuantileSketch.from_dict(legacy).quantile(0.9) == s.quantile(0.9)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0, 1e4, allow_nan=False), max_size=60),
    st.lists(st.floats(0, 1e4, allow_nan=False), max_size=60),
    st.lists(st.floats(0, 1e4, allow_nan=False), max_size=60),
)
def test_sketch_merge_is_associative_commutative_and_matches_one_pass(
    a: list[float], b: list[float], c: list[float]
) -> None:
    def sk(xs: list[float]) -> QuantileSketch:
        s = QuantileSketch()
        for x in xs:
            s.add(x)
        return s

    left, right = sk(a), sk(c)
    left.merge(sk(b))
    left.merge(sk(c))  # (a + b) + c
    bc = sk(b)
    bc.merge(sk(a))
    right.merge(bc)  # c + (b + a)
    assert left == right == sk(a + b + c)
    assert pickle.loads(pickle.dumps(left)) == left
    assert QuantileSketch.from_dict(left.to_dict()) == left


# ------------------------------------------------------------------------- aggregate


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        pytest.param(
            [], {"count": 0, "error_rate": 0.0, "ttft_s": None, "time_share": {}}, id="empty"
        ),
        pytest.param(
            [rec(ttft_s=0.5, tpot_s=0.02, input_tokens=10, output_tokens=26, streaming=True)],
            {
                "count": 1,
                "streaming_share": 1.0,
                "input_tokens": 10,
                "output_tokens": 26,
                "input_tokens_per_s": 1.0,
            },
            id="one value",
        ),
        pytest.param(
            [
                rec(input_tokens=1000, cache_read_tokens=800),
                rec(input_tokens=1000, cache_read_tokens=0),
                rec(input_tokens=5000),  # says nothing of its cache: not a miss
            ],
            {"cache_read_tokens": 800, "cache_hit_ratio": 0.4, "input_tokens": 7000},
            id="prefix cache hit ratio",
        ),
        pytest.param(
            [rec(input_tokens=10)],
            {"cache_read_tokens": 0, "cache_hit_ratio": None},
            id="no cache reported",
        ),
        pytest.param(
            [
                rec(streaming=True, ttft_s=None, output_tokens=None, status="error"),
                rec(streaming=True, ttft_s=None, output_tokens=0),
                rec(streaming=True, ttft_s=None, output_tokens=40),  # no TTFT reported, output
                rec(streaming=True, ttft_s=0.3, output_tokens=40),
                rec(streaming=False, ttft_s=None, output_tokens=None),
            ],
            {"no_first_token": 2, "count": 5},
            id="streams whose first token never came",
        ),
        pytest.param(
            [rec(duration_s=None, ttft_s=None)],
            {"count": 1, "latency_s": None, "ttft_s": None},
            id="missing fields",
        ),
        pytest.param(
            [rec(status="error", error_type="timeout"), rec(status="error"), rec()],
            {
                "errors": 2,
                "error_rate": pytest.approx(2 / 3),
                "errors_by_type": {"_OTHER": 1, "timeout": 1},
            },
            id="errors by type",
        ),
    ],
)
def test_aggregate_results(spans: list[LlmSpan], expected: dict[str, Any]) -> None:
    agg = SignalAggregate()
    for s, own in zip(spans, self_times(spans), strict=True):
        agg.add(s, own)
    res = agg.result(10.0)
    for k, v in expected.items():
        assert res[k] == v, k


def test_aggregate_distribution_summary() -> None:
    agg = SignalAggregate()
    for i in range(1, 101):
        agg.add(rec(ttft_s=i / 100), {})
    ttft = agg.result(10.0)["ttft_s"]
    assert ttft["count"] == 100 and ttft["mean"] == pytest.approx(0.505)
    assert ttft["p50"] == pytest.approx(0.50, rel=0.01)
    assert ttft["p99"] == pytest.approx(0.99, rel=0.01)
    assert (ttft["min"], ttft["max"]) == (0.01, 1.0)


def test_merging_unbucketed_values_gives_the_same_result_and_stays_bounded() -> None:
    rng = random.Random(5)
    parts = []
    for _ in range(80):  # ~8,000 values per name: past PENDING_MAX
        agg = SignalAggregate()
        for _ in range(rng.randrange(1, 200)):
            agg.add(rec(ttft_s=rng.lognormvariate(-1, 1), duration_s=rng.random() * 9), {})
        parts.append(agg)
    flushed = SignalAggregate()
    for p in pickle.loads(pickle.dumps(parts)):  # the old way: bucket each, merge sketches
        p.flush()
        flushed.merge(p)
    carried = SignalAggregate()
    for p in parts:
        carried.merge(p)
        assert all(len(v) < signals.PENDING_MAX for v in carried.pending.values())
    assert sum(len(v) for v in carried.pending.values()) > 0  # values did travel unbucketed
    assert carried.to_dict() == flushed.to_dict()
    assert carried.result(10.0) == flushed.result(10.0)


@pytest.mark.parametrize("values", [1, 5, signals.PENDING_MAX + 7])
def test_a_partial_carries_its_few_values_unbucketed_and_the_owner_gets_the_same_result(
    values: int,
) -> None:
    """A partial's aggregate travels with the values it has not bucketed yet (``values``),
    a name holding ``PENDING_MAX`` or more as a sketch; the owner's merged result is the one
    every value bucketed at the sender gives, and a partial without ``values`` (sent by an
    older worker) still reads."""
    rng = random.Random(values)
    made = []
    for _ in range(4):  # four messages' partials of one series, as the warm-up sends them
        agg = SignalAggregate()
        for _ in range(values):
            agg.add(rec(ttft_s=rng.lognormvariate(-1, 1), duration_s=rng.random() * 9), {})
        made.append(agg)
    wire = [
        orjson.loads(orjson.dumps(Partial("s", 0, i, {"10s@0": a}).to_dict()))
        for i, a in enumerate(made)
    ]
    carried = [w["windows"]["10s@0"] for w in wire]
    few = values < signals.PENDING_MAX
    assert all(("values" in c) == few and bool(c["sketches"]) != few for c in carried)
    owner, bucketed = SeriesState(), SeriesState()
    for w in wire:
        assert owner.apply(Partial.from_dict(w))
    for i, a in enumerate(made):
        old = a.to_dict()  # the old wire: every value bucketed, no ``values``
        assert "values" not in old
        assert bucketed.apply(Partial("s", 0, i, {"10s@0": SignalAggregate.from_dict(old)}))
    got, want = owner.windows["10s@0"], bucketed.windows["10s@0"]
    assert got.result(10.0) == want.result(10.0) and got.to_dict() == want.to_dict()
    assert all(len(v) < signals.PENDING_MAX for v in got.pending.values())


def test_where_time_goes_from_self_times_and_model_server_parts() -> None:
    root = rec(span_id="1" * 16, layer=Layer.GATEWAY, duration_s=2.0)
    agent = rec(span_id="2" * 16, parent_span_id="1" * 16, layer=Layer.AGENT, duration_s=1.8)
    srv = rec(
        span_id="3" * 16,
        parent_span_id="2" * 16,
        layer=Layer.MODEL_SERVER,
        duration_s=1.5,
        queue_s=0.8,
        prefill_s=0.2,
        decode_s=0.4,
        ttft_s=1.0,
    )
    parts = self_times([root, agent, srv])
    assert parts == [
        {"gateway": 200_000_000},
        {"agent": 300_000_000},
        {
            "queue": 800_000_000,
            "prefill": 200_000_000,
            "decode": 400_000_000,
            "model-server": 100_000_000,
        },
    ]
    agg = SignalAggregate()
    agg.add(srv, parts[2])
    res = agg.result(10.0)
    assert res["ttft_share"]["queue"] == pytest.approx(0.8)
    assert res["time_share"]["queue"] == pytest.approx(0.8 / 1.5)


# --------------------------------------------------------------------------- windows


def test_window_specs() -> None:
    assert WindowSpec.parse("10s").name == "10s"
    hop = WindowSpec.parse("5m/1m")
    assert hop.name == "5m/1m"
    t = T0 + 301 * NS
    starts = list(hop.starts(t))
    assert len(starts) == 5 and all(s <= t < s + hop.size_ns for s in starts)
    assert list(WindowSpec.parse("10s").starts(T0 + 25 * NS)) == [T0 + 20 * NS]
    for bad in ("7s/2s", "0s", "10", "1m/2m", "abc"):
        with pytest.raises(ValueError):
            WindowSpec.parse(bad)
    assert parse_duration_ns("500ms") == NS // 2


class FakeClock:
    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def test_idle_partition_advances_with_the_wall_clock() -> None:
    clock = FakeClock(T0 + 100 * NS)
    c = PartitionClock(allowed_lateness_ns=5 * NS, idle_timeout_ns=30 * NS, wall_ns=clock)
    c.touch()
    c.observe(T0)
    assert c.current() == T0
    clock.t += 29 * NS
    assert c.current() == T0  # not idle yet
    clock.t += 2 * NS
    assert c.current() == clock.t - 35 * NS  # idle: follows the wall clock
    assert c.is_late(T0 + 10 * NS)


def _preagg(clock: FakeClock, **kw: Any) -> PreAggregator:
    ws = WindowSettings(
        specs=(WindowSpec.parse("10s"), WindowSpec.parse("1m")),
        allowed_lateness_ns=2 * NS,
        idle_timeout_ns=30 * NS,
    )
    return PreAggregator(ws, SeriesKeyer(**kw), clock)


def test_late_spans_are_counted_not_merged() -> None:
    pre = _preagg(FakeClock())
    pre.add_message(0, 0, [rec(end_ns=T0 + 65 * NS)])  # watermark -> T0+65s
    [p] = pre.add_message(0, 1, [rec(end_ns=T0 + 5 * NS)])  # its 10s and 1m windows closed
    assert pre.late_spans == 2
    assert all(a.count == 0 for a in p.windows.values())
    assert sum(a.late for a in p.windows.values()) == 2
    [again] = pre.add_message(0, 2, [rec(end_ns=T0 + 58 * NS)])  # 1m window still open
    assert sum(a.count for a in again.windows.values()) == 1 and pre.late_spans == 3


def test_series_cap_sends_the_rest_to_overflow() -> None:
    keyer = SeriesKeyer(max_series=2)
    keys = [keyer.key(rec(service=f"s{i}")) for i in range(4)]
    assert keys[2] == keys[3] == (OVERFLOW,) * len(keyer.dimensions) and keyer.overflowed == 2
    with pytest.raises(ValueError):
        SeriesKeyer(dimensions=("user_id",))


# --------------------------------------------------------------------- merge / scale


def _stream(seed: int, n_messages: int = 60) -> Iterator[tuple[int, int, list[LlmSpan]]]:
    rng = random.Random(seed)
    offsets = [0, 0, 0, 0]
    for _ in range(n_messages):
        part = rng.randrange(4)
        spans = [
            rec(
                service=rng.choice(["a", "b"]),
                request_model=rng.choice(["m1", "m2"]),
                end_ns=T0 + rng.randrange(0, 180) * NS,
                duration_s=rng.random() * 3,
                ttft_s=rng.random(),
                status=rng.choice(["ok", "ok", "error"]),
                input_tokens=rng.randrange(1000),
                output_tokens=rng.randrange(500),
            )
            for _ in range(rng.randrange(1, 30))
        ]
        yield part, offsets[part], spans
        offsets[part] += 1


def _records(closed: list[Any]) -> list[Any]:
    return sorted(
        (c.series, c.spec.name, c.start_ns, repr(c.aggregate.result(1.0))) for c in closed
    )


def test_merge_is_independent_of_order_and_redelivery() -> None:
    pre = _preagg(FakeClock(T0 + 10**6 * NS))
    partials = [p for part, off, spans in _stream(1) for p in pre.add_message(part, off, spans)]
    reference = _records(close_offline(partials))
    shuffled = partials[:]
    random.Random(7).shuffle(shuffled)
    # at-least-once: every partial of source partition 1 delivered twice, in source order
    redelivered = sorted(
        shuffled + [p for p in partials if p.source == 1], key=lambda p: (p.source, p.offset)
    )
    assert _records(close_offline(redelivered)) == reference
    # merging in a different order across sources (per-source order kept, as Kafka keeps it)
    by_source = sorted(partials, key=lambda p: (-p.source, p.offset))
    assert _records(close_offline(by_source)) == reference


def test_one_aggregator_or_two_give_identical_windows() -> None:
    def run(owner_of: dict[int, int]) -> list[Any]:
        pres = {w: _preagg(FakeClock(T0 + 10**6 * NS)) for w in set(owner_of.values())}
        partials = [
            p
            for part, off, spans in _stream(3)
            for p in pres[owner_of[part]].add_message(part, off, spans)
        ]
        return _records(close_offline(partials))

    assert run({0: 0, 1: 0, 2: 0, 3: 0}) == run({0: 0, 1: 1, 2: 0, 3: 1})


def test_series_state_round_trip_and_duplicates() -> None:
    pre = _preagg(FakeClock())
    [p] = pre.add_message(2, 7, [rec()])
    state = SeriesState()
    assert state.apply(p) and not state.apply(
        Partial.from_dict(__import__("orjson").loads(p.to_bytes()))
    )
    again = SeriesState.from_dict(
        __import__("orjson").loads(__import__("orjson").dumps(state.to_dict()))
    )
    assert again.to_dict() == state.to_dict()
    assert state.close(p.series, T0, 0) == []  # nothing closes before the watermark
    closed = state.close(p.series, T0 + 10 * 60 * NS, 0)
    assert [c.spec.name for c in closed] == ["10s", "1m"]
    late = Partial(p.series, 2, 8, {k: SignalAggregate(count=3) for k in p.windows})
    state.apply(late)
    assert state.windows == {} and state.late_after_close == 6


def test_watermarks_wait_for_every_source() -> None:
    w = Watermarks()
    w.update(0, 100, sources=2)
    assert w.low() == 0
    w.update(1, 50, sources=2)
    w.update(0, 40, sources=2)  # never goes back
    assert w.low() == 50


def test_deferred_watermark_moves_only_after_the_partials_are_sent() -> None:
    pre = _preagg(FakeClock())
    pre.add_message(3, 0, [rec(end_ns=T0 + 40 * NS)], defer_watermark=True)
    assert pre.watermarks([3]) == {3: 0}  # a heartbeat now announces nothing new
    pre.observe(3, pre.deferred(3))
    assert pre.watermarks([3]) == {3: T0 + 40 * NS}


def test_backlog_counts_what_was_processed_not_what_was_read() -> None:
    from spanwatch.pipeline.windows.spec import has_backlog

    assert has_backlog(None, 10, 20)  # end not known since the assignment: not known idle
    assert has_backlog(10, None, None)  # records written, none handled here yet
    assert not has_backlog(10, 10, None)  # taken over fully committed: nothing to read
    assert not has_backlog(0, None, None)  # empty partition
    assert has_backlog(10, 4, 8)  # offset 9 fetched perhaps, not handled yet
    assert not has_backlog(10, 4, 9)  # handled to the end, commit still behind
    pre = _preagg(FakeClock())
    pre.add_message(3, 7, [rec(end_ns=T0)], defer_watermark=True)
    assert pre.backlog({3: (8, 0)}) == {3}  # its partials are not sent yet
    pre.observe(3, pre.deferred(3))
    pre.mark_processed(3, 7)
    assert pre.backlog({3: (8, 0), 4: (5, 5)}) == set()
    pre.forget([3])  # revoked: what this worker handled there no longer counts
    assert pre.backlog({3: (8, 0)}) == {3}


def test_a_caught_up_partition_goes_idle_and_a_lagging_one_does_not() -> None:
    clock = FakeClock()
    pre = _preagg(clock)
    pre.add_message(1, 0, [rec(end_ns=T0)], defer_watermark=True)
    pre.observe(1, pre.deferred(1))
    pre.mark_processed(1, 0)
    pre.add_message(2, 0, [rec(end_ns=T0)], defer_watermark=True)
    pre.observe(2, pre.deferred(2))
    pre.mark_processed(2, 0)
    clock.t += 3600 * NS  # long quiet: both would be idle by the clock alone
    marks = pre.watermarks([1, 2], pre.backlog({1: (1, 0), 2: (5, 0)}))
    assert marks[1] > T0  # read to its end: the clock moves its watermark
    assert marks[2] == T0  # four records not handled yet: held at its last event


def test_bundles_group_partials_by_a_stable_owner_partition() -> None:
    import orjson

    from spanwatch.pipeline.windows.partial import bundles, owner_partition

    pre = _preagg(FakeClock())
    made = pre.add_message(0, 0, [rec(service=f"s{i}") for i in range(20)])
    out = bundles(made, 4)
    got = sorted(p["series"] for v in out.values() for p in orjson.loads(v)["partials"])
    assert got == sorted(p.series for p in made)
    for part, value in out.items():
        assert all(owner_partition(p["series"], 4) == part for p in orjson.loads(value)["partials"])
    assert owner_partition('["a"]', 4) == owner_partition('["a"]', 4)


def test_lateness_follows_the_messages_however_their_partials_are_batched() -> None:
    """A worker defers the watermark it announces until a batch is sent, but a span is late
    by the messages before it alone: held or sent, the same spans are late (the pure
    pipeline's answer, and one worker's and two workers')."""
    spans = [rec(end_ns=T0 + 60 * NS), rec(end_ns=T0 + 2 * NS)]  # the second ends too early
    deferred, direct = _preagg(FakeClock()), _preagg(FakeClock())
    for offset, span in enumerate(spans):
        deferred.add_message(3, offset, [span], defer_watermark=True)  # held, not sent yet
        direct.add_message(3, offset, [span])
    assert deferred.late_spans == direct.late_spans >= 1
    assert deferred.watermarks([3]) == {3: 0}  # nothing announced before the batch is sent


@pytest.mark.parametrize("sent", [False, True], ids=["held", "sent-not-committed"])
def test_messages_read_again_after_a_rebalance_are_late_as_they_were_the_first_time(
    sent: bool,
) -> None:
    """A rebalance that leaves a partition here rewinds it to its committed offset. The
    messages read again are judged by the messages before them, not by the later ones this
    worker had already pre-aggregated (held in a batch, or sent and not committed)."""
    spans = [rec(end_ns=T0 + 1 * NS), rec(end_ns=T0 + 3 * NS), rec(end_ns=T0 + 60 * NS)]
    pre = _preagg(FakeClock())
    pre.rewind_depth = 10
    for offset, span in enumerate(spans):
        pre.add_message(0, offset, [span], defer_watermark=True)
        if sent:
            pre.observe(0, pre.deferred(0))
    assert pre.late_spans == 0
    pre.add_message(0, 1, [spans[1]], defer_watermark=True)  # read again from offset 1
    assert pre.late_spans == 0  # a span at +3s is not late to the one at +60s after it
    pre.add_message(0, 2, [spans[2]], defer_watermark=True)
    pre.add_message(0, 3, [rec(end_ns=T0 + 2 * NS)])  # but is late to it as the next message
    assert pre.late_spans == 2  # its 10s and 1m windows


def test_a_rewind_past_what_is_remembered_judges_as_a_new_owner_would() -> None:
    """Older messages were committed, so no rebalance goes back past the last
    ``rewind_depth``; if one did, nothing before it would be known, as for a partition new
    to this worker: the mark starts again from nothing, and nothing is wrongly late."""
    pre = _preagg(FakeClock())
    pre.rewind_depth = 2
    for offset in range(4):
        pre.add_message(0, offset, [rec(end_ns=T0 + (1 + 60 * offset) * NS)])
    assert pre.clock(0).seen_ns == T0 + 181 * NS
    pre.add_message(0, 0, [rec(end_ns=T0 + 1 * NS)])
    assert pre.late_spans == 0 and pre.clock(0).seen_ns == T0 + 1 * NS
