"""Progress bars for long commands (benchmarks, captures, backtests), with tqdm.

A bar is drawn on stderr only when stderr is a terminal: piped or captured output (CI, a
file, ``2>log``) carries no carriage returns. tqdm's own environment variables apply, e.g.
``TQDM_DISABLE=1`` turns every bar off and ``TQDM_MININTERVAL=5`` slows them down.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def bar(
    iterable: Iterable[T] | None = None,
    *,
    desc: str,
    total: float | None = None,
    unit: str = "it",
    **kwargs: Any,
) -> tqdm[T]:
    """A bar over ``iterable`` (or updated by hand), drawn only on a terminal."""
    shown: tqdm[T] = tqdm(  # type: ignore[assignment]  # the stubs' overloads on iterable
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        file=sys.stderr,
        disable=None,  # None: off when stderr is not a terminal
        leave=False,
        dynamic_ncols=True,
        mininterval=0.5,
        **kwargs,
    )
    return shown


def lines_read(stream: TextIO, desc: str) -> Iterator[str]:
    """The lines of ``stream`` while a bar shows how much of it has been read (bytes of a
    file, so its end is known; a pipe shows a count)."""
    total: int | None = None
    try:
        if stream.seekable():
            here = stream.tell()
            total = stream.seek(0, 2) - here
            stream.seek(here)
    except OSError:
        total = None
    b: tqdm[None]
    with bar(desc=desc, total=total, unit="B", unit_scale=True, unit_divisor=1024) as b:
        for line in stream:
            b.update(len(line.encode("utf-8", "surrogateescape")))
            yield line
