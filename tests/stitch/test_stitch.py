"""The stitching stage (pipeline/stitch/stitcher.py): pieces in any order and with repeats make one
payload, once; open payloads time out, the oldest are evicted past the byte cap, a finished
payload's late piece is not a new payload, and a successor holds what it took over."""

from __future__ import annotations

import hashlib
from typing import Any

from spanwatch.pipeline.stitch.chunks import Piece
from spanwatch.pipeline.stitch.stitcher import StitchStage

NS = 10**9


class Clock:
    def __init__(self) -> None:
        self.t = 1_000 * NS

    def __call__(self) -> int:
        return self.t


def pieces(pid: str, text: str, size: int = 4) -> list[Piece]:
    raw = text.encode()
    parts = [raw[i : i + size] for i in range(0, len(raw), size)]
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    return [
        Piece(
            pid, "t" * 32, "s" * 16, "input", i, len(parts), "utf-8", p, digest if i == 0 else None
        )
        for i, p in enumerate(parts)
    ]


def stage(
    clock: Clock | None = None, max_bytes: int = 10**6, meta: dict[Any, Any] | None = None
) -> StitchStage:
    data: dict[Any, Any] = {}
    return StitchStage(
        {} if meta is None else meta, data, 30 * NS, max_bytes, wall_ns=clock or Clock()
    )


def test_pieces_in_any_order_with_repeats_make_one_complete_payload() -> None:
    st = stage()
    ps = pieces("p1", "hello chunked world")
    order = [ps[3], ps[0], ps[3], ps[1], ps[4], ps[2]]
    done = [p for piece in order for p in st.add_piece(0, piece)]
    assert [(p.status, p.text) for p in done] == [("complete", "hello chunked world")]
    assert st.counters["pieces_duplicate"] == 1 and st.counters["payloads_complete"] == 1
    assert st.held == {} and st.bytes_held == 0
    assert not [k for k in st.data if k.startswith("p1#")]  # the pieces' data is dropped
    # a retried piece after the end is not a new payload
    assert st.add_piece(0, ps[0]) == [] and st.counters["pieces_after_done"] == 1


def test_an_open_payload_times_out_as_partial_with_what_arrived() -> None:
    clock = Clock()
    st = stage(clock)
    ps = pieces("p1", "0123456789ab")
    st.add_piece(0, ps[0])
    st.add_piece(0, ps[2])
    clock.t += 29 * NS
    assert st.tick(0) == []
    clock.t += 1 * NS
    assert st.tick(1) == []  # another partition's tick finishes nothing of partition 0
    (payload,) = st.tick(0)
    assert (payload.status, payload.reason) == ("partial", "timeout")
    assert payload.record(False, 0)["missing"] == [[1, 1]]  # index 1, as a range
    # the tombstone lives one timeout long, then a piece would start a new payload
    assert st.add_piece(0, ps[1]) == []
    clock.t += 30 * NS
    st.tick(0)
    assert "p1" not in st.meta


def test_past_the_byte_cap_the_oldest_payloads_are_evicted() -> None:
    clock = Clock()
    st = stage(clock, max_bytes=10)
    for pid in ("old", "mid"):
        assert st.add_piece(0, pieces(pid, pid * 4)[0]) == []  # 4 bytes held each
        clock.t += NS
    evicted = st.add_piece(0, pieces("new", "new" * 4)[0])  # 12 > 10: the oldest goes
    assert [(p.state.payload_id, p.reason, p.text) for p in evicted] == [("old", "evicted", "oldo")]
    assert set(st.held) == {"mid", "new"} and st.bytes_held == 8


def test_a_successor_holds_the_open_payloads_of_its_partitions() -> None:
    clock = Clock()
    first = stage(clock)
    first.add_piece(0, pieces("a", "aaaaaaaa")[0])
    first.add_piece(1, pieces("b", "bbbbbbbb")[0])
    successor = stage(clock, meta=first.meta)
    successor.data.update(first.data)
    successor.assigned({1})
    clock.t += 30 * NS
    assert successor.tick(0) == []  # not its partition
    (payload,) = successor.tick(1)
    assert (payload.state.payload_id, payload.reason, payload.text) == ("b", "timeout", "bbbb")
