"""Changelog replay of the versioned table: stale writes of a thawed worker are skipped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spanwatch.agents.tables import newest_events
from spanwatch.pipeline.common.versions import next_version, version_of


@dataclass
class Msg:
    value: bytes | None


@dataclass
class Event:
    key: Any
    value: Any
    message: Msg


def ev(key: str, value: Any) -> Event:
    return Event(key, value, Msg(None if value is None else b"x"))


def replay(events: list[Event], restored: dict[str, Any]) -> dict[str, Any]:
    """What a store holds after the batch, as faust's memory store applies it."""
    keep, _ = newest_events(events, restored.get, lambda k: k)
    out = dict(restored)
    for e in keep:
        if e.message.value is None:
            out.pop(e.key, None)
        else:
            out[e.key] = e.value
    return out


def test_a_stale_write_after_a_newer_one_is_skipped_in_the_batch_and_across_batches() -> None:
    # the new owner wrote v=40, then the thawed worker's buffered v=12 landed after it
    batch = [ev("s", {"n": 1, "v": 10}), ev("s", {"n": 5, "v": 40}), ev("s", {"n": 2, "v": 12})]
    keep, stale = newest_events(batch, lambda k: None, lambda k: k)
    assert [e.value["v"] for e in keep] == [10, 40] and stale == 1
    assert replay(batch, {}) == {"s": {"n": 5, "v": 40}}
    # the same stale write in a later batch, against what was restored already
    assert replay([ev("s", {"n": 2, "v": 12})], {"s": {"n": 5, "v": 40}}) == {
        "s": {"n": 5, "v": 40}
    }


def test_equal_and_newer_versions_apply_and_unversioned_records_replay_as_faust_does() -> None:
    restored = {"s": {"n": 5, "v": 40}, "__wm__:0": {"0": 7}}
    batch = [
        ev("s", {"n": 5, "v": 40}),
        ev("s", {"n": 6, "v": 41}),
        ev("__wm__:0", {"0": 3}),
        ev("t", {"n": 1, "v": 2}),
        ev("t", None),
    ]
    assert replay(batch, restored) == {"s": {"n": 6, "v": 41}, "__wm__:0": {"0": 3}}


def test_version_of_reads_only_integer_versions_of_dicts() -> None:
    assert version_of({"v": 3}) == 3
    assert version_of({"v": "3"}) is None and version_of([1]) is None and version_of(None) is None


def test_next_version_never_goes_below_the_restored_one() -> None:
    # a new owner replaying offsets its predecessor applied keeps the restored version
    assert next_version(40, 12) == 40
    assert next_version(40, 41) == 41
    assert next_version(None, 7) == 7 and next_version(version_of({"n": 1}), 7) == 7
