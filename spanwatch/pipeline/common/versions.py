"""Versions of table values: the input offset whose processing wrote a value.

Each value a versioned table holds carries ``"v"``: the offset, in the input topic
co-partitioned with the table, of the event that produced it, and never less than the value's
previous version (:func:`next_version`). Every owner reads that input in offset order, so a
higher ``v`` is a later decision (``agents.tables.VersionedTable`` restores by it).
"""

from __future__ import annotations

from typing import Any

VERSION = "v"


def version_of(value: Any) -> int | None:
    """The version a table value carries, or None."""
    if isinstance(value, dict):
        v = value.get(VERSION)
        if isinstance(v, int):
            return v
    return None


def next_version(previous: int | None, offset: int) -> int:
    """The version of a value written at input ``offset`` over one of version ``previous``:
    never below it, so a new owner replaying input its predecessor had already applied
    (offsets below the restored version) writes versions that do not read as stale."""
    return offset if previous is None else max(previous, offset)
