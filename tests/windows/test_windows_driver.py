"""The ingest side of the windows as a pure driver (pipeline/windows/driver.py): batching and
confirmed commits, watermarks that move only once a batch is with the broker, cold
partitions, freezes and heartbeats, all on an injected clock and with no broker."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from spanwatch.devtools.traffic import TrafficGenerator
from spanwatch.pipeline.common.durations import NS
from spanwatch.pipeline.config import Settings, preaggregator
from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.ingest.spans import LlmSpan
from spanwatch.pipeline.windows.coalesce import Coalescer
from spanwatch.pipeline.windows.driver import SendBatch, WindowsIngest
from spanwatch.pipeline.windows.partial import Partial
from spanwatch.pipeline.windows.spec import PartitionClock
from tests.builders import Clock

T0 = 1_700_000_000 * NS
SESSION = 10.0


def _spans(seed: int, at: int = T0) -> list[LlmSpan]:
    data = next(TrafficGenerator(seed).batches(20, at)).traces_data()
    return ingest_message(data.SerializeToString()).spans


def _driver(clock: Clock, *, interval_s: float = 5.0, max_weight: int = 50) -> WindowsIngest:
    wall = [T0]
    pre = preaggregator(Settings(), lambda: wall[0])
    coalescer = Coalescer(interval_s, max_weight=max_weight, resume_after_s=20, clock=clock)
    return WindowsIngest(pre, coalescer, SESSION, clock=clock)


def _carry_out(d: WindowsIngest, cmds: Sequence[SendBatch]) -> list[int]:
    """What the agent does: confirm when asked, send, report; the offsets that may commit."""
    commits = []
    for cmd in cmds:
        if d.confirm_first(cmd) is not None:
            d.confirmed(cmd.batch.partition)
        d.sent(cmd)
        commits.append(d.done(cmd))
    return commits


def test_messages_are_batched_and_a_commit_is_confirmed_before_too_much_is_unconfirmed() -> None:
    clock = Clock()
    d = _driver(clock, max_weight=60)
    d.assigned([0])
    sends, asked = [], []
    for offset in range(12):
        cmds, error = d.message(0, offset, _spans(offset, T0 + offset * NS))
        assert error is None
        for cmd in cmds:
            asked.append(d.confirm_first(cmd))
            sends.append(cmd)
            _carry_out(d, [cmd])
        clock.t += 0.1
    # the first messages go one at a time (after an assignment): held together, but each
    # partial keeps its own one-message range; then batches of several, coalesced
    assert sends[0].batch.messages > 1
    assert all(p.first < 0 for p in sends[0].batch.partials)
    assert any(p.first >= 0 for c in sends for p in c.batch.partials)
    # every batch but the first asked for the commit of what was sent before it
    confirmed = [a for a in asked if a is not None]
    assert confirmed and all(a <= c.batch.last for a, c in zip(asked, sends, strict=True) if a)


def test_a_watermark_moves_only_once_its_batch_is_with_the_broker() -> None:
    clock = Clock()
    d = _driver(clock, interval_s=0)  # every message a batch of its own
    d.assigned([0])
    (cmd,), _ = d.message(0, 0, _spans(1, T0 + 30 * NS))
    assert d.heartbeat(False, [0])
    before = {a.src: a.wm for a in d.announcements([0], {0: (1, 1)})}
    assert before.get(0, 0) < T0  # nothing announced beyond what the broker has
    d.sent(cmd)
    after = {a.src: a.wm for a in d.announcements([0], {0: (1, 1)})}
    assert after[0] >= T0 + 29 * NS
    assert d.done(cmd) == 1  # then offset 0 may commit


def test_partitions_new_here_join_their_traces_again_once() -> None:
    d = _driver(Clock())
    d.assigned([0, 1])
    assert d.needs_rejoin(0) and not d.needs_rejoin(0)  # once, before its first message
    d.assigned([0, 1, 2])  # 0 and 1 stayed: warm (1 still waits for its first message)
    assert not d.needs_rejoin(0) and d.needs_rejoin(1) and d.needs_rejoin(2)


def _flush(d: WindowsIngest) -> list[SendBatch]:
    """What the coalescer holds of partition 0, as the heartbeat would send it when due."""
    return [SendBatch(b, d.coalescer.epoch) for b in d.coalescer.take(0)]


def test_after_a_freeze_nothing_is_announced_and_messages_go_one_at_a_time() -> None:
    clock = Clock()
    d = _driver(clock, max_weight=60)
    d.assigned([0])
    for offset in range(3):  # past the first max_weight spans: batches would form
        _carry_out(d, d.message(0, offset, _spans(offset))[0])
    _carry_out(d, _flush(d))
    assert d.heartbeat(False, [0])
    clock.t += SESSION + 1  # the event loop did not run for longer than the session
    assert not d.heartbeat(False, [0])  # frozen: the group has likely moved the partitions
    d.liveness()  # the gap is seen: one message at a time for a while
    batches = []
    for offset in range(3, 6):
        batches += d.message(0, offset, _spans(offset))[0]
    batches += _flush(d)
    assert [(c.batch.last, c.batch.messages) for c in batches] == [(4, 2), (5, 1)]
    assert all(p.first < 0 for c in batches for p in c.batch.partials)  # ranges never merged
    _carry_out(d, batches)
    assert not d.heartbeat(True, [0])  # a rebalance pauses the partitions: nothing either


def test_a_message_that_fails_still_moves_the_batching_on() -> None:
    d = _driver(Clock(), interval_s=0)
    d.assigned([0])

    def broken(clock: object) -> list[object]:
        raise RuntimeError("featurizer failed")

    cmds, error = d.message(0, 7, _spans(3), broken)  # type: ignore[arg-type]
    assert isinstance(error, RuntimeError)
    assert [c.batch.last for c in cmds] == [7]  # its spans' partials still go out
    assert _carry_out(d, cmds) == [8]


def test_held_batches_go_out_on_the_heartbeat_when_no_message_comes() -> None:
    clock = Clock()
    d = _driver(clock, interval_s=2.0, max_weight=200)
    d.assigned([0])
    offset = 0
    while d.coalescer.seen.get(0, 0) < 200:  # one message at a time after an assignment
        _carry_out(d, d.message(0, offset, _spans(offset))[0])
        offset += 1
    _carry_out(d, _flush(d))
    held, _ = d.message(0, offset, _spans(offset))
    assert held == []  # held for the coalescing interval
    clock.t += 2.5
    assert d.heartbeat(False, [0])
    (due,) = d.due()
    assert due.batch.last == offset and _carry_out(d, [due]) == [offset + 1]


@pytest.mark.parametrize("gap", [SESSION - 1, SESSION + 1])
def test_only_a_gap_longer_than_the_session_is_a_freeze(gap: float) -> None:
    clock = Clock()
    d = _driver(clock)
    clock.t += gap
    assert d.heartbeat(False, [0]) is (gap <= SESSION)


def test_a_read_back_joins_only_messages_within_the_trace_wait() -> None:
    d = _driver(Clock())
    d.assigned([0])
    wait = 60 * NS
    newest = T0 + 120 * NS
    messages = [(T0, b"old"), (newest - wait, b"edge"), (newest, b"new")]
    decoded: list[bytes] = []

    def spans_of(value: bytes, ts_ns: int) -> list[LlmSpan]:
        decoded.append(value)
        return _spans(len(decoded), ts_ns)

    # the oldest message is past the wait: skipped, and a read cut there cut nothing that counts
    assert d.rejoin_messages(0, messages, True, wait, spans_of) == (2, False)
    assert decoded == [b"edge", b"new"]
    # within the wait, a cut read stays cut; nothing read, nothing joined
    assert d.rejoin_messages(0, messages[1:], True, wait, spans_of) == (2, True)
    assert d.rejoin_messages(0, [], True, wait, spans_of) == (0, True)


def test_a_partition_kept_through_a_rebalance_is_read_again_with_the_same_late_spans() -> None:
    """A rebalance drops what the coalescer held and the partition is read again from its
    committed offset. Messages read again count the late spans they counted the first time
    (by the messages before them): not those the worker had read after them."""
    at = [T0, T0 + 1 * NS, T0 + 90 * NS]
    messages = [(offset, _spans(offset, t)) for offset, t in enumerate(at)]
    once, twice = (_driver(Clock(), interval_s=60, max_weight=10_000) for _ in range(2))
    for d in (once, twice):
        d.assigned([0])
    for offset, spans in messages:
        once.message(0, offset, spans)
        twice.message(0, offset, spans)
    twice.assigned([0])  # a rebalance: partition 0 stays here, its held batch is dropped
    for offset, spans in messages:
        cmds, _ = twice.message(0, offset, spans)
        assert not cmds  # still held: nothing was sent before the rebalance either
    assert twice.preagg.late_spans == 2 * once.preagg.late_spans


def test_what_a_message_makes_after_its_spans_is_judged_by_the_mark_it_began_with() -> None:
    """Prompt samples (``extra``) are made after the message's spans moved the partition's
    seen mark: the driver hands them the clock, whose :meth:`late_mark` is still the mark
    before the message, so a sample is late exactly when its span is."""
    d = _driver(Clock())
    d.assigned([0])
    first, second = _spans(1), _spans(2, at=T0 - 60 * NS)
    d.message(0, 0, first)
    marks: list[tuple[int, int]] = []

    def extra(clock: PartitionClock) -> list[Partial]:
        marks.append((clock.late_mark(), clock.seen_ns))
        return []

    d.message(0, 1, second, extra)
    newest_first = max(s.end_ns for s in first)
    assert marks == [(newest_first, max(newest_first, *(s.end_ns for s in second)))]
    assert d.preagg.late_spans > 0  # the second message is a minute behind the first
