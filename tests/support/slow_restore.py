"""``spanwatch`` with faust's table restore slowed down at its end (a test fault).

Every table waits ``SPANWATCH_TEST_RESTORE_DELAY_S`` seconds (default 3) before it reports its
restore complete. In that time faust has paused the changelog partitions it read while the
stream partitions are still paused, and its fetcher keeps polling: the window in which faust
used to drop every fetched stream record (transport/consumer.py). On a fast machine the window
is a few milliseconds and the loss rare; widened, it happened in most runs before the fix.
When ``SPANWATCH_TEST_RESTORE_MARK`` names a file, it is created as the wait begins, so that a
test can write input inside the window.

    python -m tests.support.slow_restore worker --broker ...
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import faust

from spanwatch.cli import main

DELAY_S = float(os.environ.get("SPANWATCH_TEST_RESTORE_DELAY_S", "3"))
MARK = os.environ.get("SPANWATCH_TEST_RESTORE_MARK")
_completed = faust.Table.on_recovery_completed


async def _slow_recovery_completed(self: Any, active_tps: Any, standby_tps: Any) -> None:
    if MARK:
        Path(MARK).touch()
    await asyncio.sleep(DELAY_S)
    await _completed(self, active_tps, standby_tps)


faust.Table.on_recovery_completed = _slow_recovery_completed  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
