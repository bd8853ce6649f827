"""A faust table whose recovery keeps the newest version of each key, not the last record read.

faust restores a table by replaying its changelog, last record wins. That is only right while
the changelog is in decision order, and a worker frozen beyond its session (SIGSTOP, a long GC
or VM pause) breaks it: when it thaws, the table writes it made before the freeze, still in
its producer's buffer, and those it makes before it learns it lost the partition land in the
changelog *after* the new owner's writes. The next owner to recover the partition (often the
thawed worker itself, which gets its partition back) would take those stale states.

Each value written by the agents that use this table carries a version
(``pipeline.common.versions``: the input offset whose processing wrote it); a record whose
version is lower than the one already restored for its key is a stale write and is skipped.
Values without a version and deletions (tombstones) replay as faust replays them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import faust
from faust.types import EventT

from spanwatch.pipeline.common.versions import version_of


def newest_events(
    batch: Iterable[EventT], restored: Callable[[Any], Any], key_of: Callable[[Any], Any]
) -> tuple[list[EventT], int]:
    """The events of a changelog batch to apply, in order, and how many were stale.

    ``restored(key)`` is the value restored so far (None when absent); within the batch, the
    newest version applied per key is remembered, so a stale record after a newer one in the
    same batch is skipped too."""
    keep: list[EventT] = []
    newest: dict[Any, int] = {}
    stale = 0
    for event in batch:
        v = version_of(event.value) if event.message.value is not None else None
        if v is None:
            keep.append(event)
            continue
        key = key_of(event.key)
        have = newest[key] if key in newest else version_of(restored(key))
        if have is not None and v < have:
            stale += 1
            continue
        newest[key] = v
        keep.append(event)
    return keep, stale


class VersionedTable(faust.Table):
    """A :class:`faust.Table` whose changelog replay skips stale versions (see the module)."""

    stale_records: int = 0

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        keep, stale = newest_events(batch, self._restored, self._to_key)
        self.stale_records += stale
        super().apply_changelog_batch(keep)

    def _restored(self, key: Any) -> Any:
        try:
            return self.data[key]
        except KeyError:
            return None


def versioned_table(app: faust.App, name: str, **kwargs: Any) -> VersionedTable:
    """Declare a :class:`VersionedTable` on ``app`` (what ``app.Table`` does for its own)."""
    table = VersionedTable(app, name=name, beacon=app.tables.beacon, **kwargs)
    app.tables.add(table)
    return table
