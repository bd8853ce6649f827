"""The two clocks a stage may need, injected (tests pass their own):

* :data:`WallClock` (``wall_ns``): Unix time in nanoseconds, what span times are compared
  with: watermarks of idle partitions, trace and payload expiry;
* :data:`Timer` (``clock``): monotonic seconds, for intervals that wall-clock jumps must not
  bend: batching, state flushes, back-off, freeze detection.

A component takes ``wall_ns: WallClock = time.time_ns`` or ``clock: Timer = time.monotonic``,
under these names and no others.
"""

from __future__ import annotations

from collections.abc import Callable

WallClock = Callable[[], int]
Timer = Callable[[], float]
