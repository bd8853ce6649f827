"""The commit rule both readers of a topic follow (pipeline/common/commits.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from spanwatch.pipeline.common.commits import CommitLimits


def test_a_held_partition_commits_nothing_until_allowed_and_never_beyond() -> None:
    c: CommitLimits[int] = CommitLimits()
    c.hold([0, 1])
    assert c.allowed({0: 10, 1: 5}) == {}
    c.allow(0, 7)
    assert c.allowed({0: 10, 1: 5}) == {0: 7}
    c.done({0: 7})
    assert c.allowed({0: 10}) == {}  # not repeated
    c.allow(0, 4)  # a stage may report less later: the commit never moves back
    assert c.allowed({0: 10}) == {}
    c.allow(0, 12)
    assert c.allowed({0: 10}) == {0: 10}


def test_unlimited_partitions_are_guarded_or_passed_as_the_reader_asks() -> None:
    guarded: CommitLimits[str] = CommitLimits()
    passed: CommitLimits[str] = CommitLimits(guard_unlimited=False)
    for c in (guarded, passed):
        c.done({"t0": 5})
    assert guarded.allowed({"t0": 5, "t1": 3}) == {"t1": 3}
    assert passed.allowed({"t0": 5, "t1": 3}) == {"t0": 5, "t1": 3}  # faust's own books


def test_a_partition_that_went_elsewhere_is_forgotten() -> None:
    c: CommitLimits[int] = CommitLimits()
    c.hold([0])
    c.allow(0, 9)
    c.done({0: 9})
    c.forget(0)
    assert c.allowed({0: 3}) == {0: 3}  # a new owner's books start from the broker's


@given(
    st.lists(
        st.tuples(st.sampled_from(["allow", "commit"]), st.integers(0, 50)),
        max_size=40,
    )
)
def test_what_commits_never_exceeds_the_limit_nor_goes_back(steps: list[tuple[str, int]]) -> None:
    c: CommitLimits[int] = CommitLimits()
    c.hold([0])
    limit, last = None, -1
    for op, n in steps:
        if op == "allow":
            c.allow(0, n)
            limit = n
            continue
        got = c.allowed({0: n}).get(0)
        if got is not None:
            assert limit is not None and got <= min(n, limit) and got > last
            c.done({0: got})
            last = got
