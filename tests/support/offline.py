"""The offline pipeline that broker tests compare a live worker against."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from spanwatch.pipeline.config import load_settings
from spanwatch.pipeline.ingest import ingest_message
from spanwatch.pipeline.partials import ClosedWindow, PreAggregator, close_offline
from spanwatch.pipeline.signals import SeriesKeyer


def offline_windows(
    msgs: Iterable[tuple[int, bytes]], config: Path, *, tokens: bool = False
) -> list[ClosedWindow]:
    """Every window the pure pipeline closes for ``(partition, OTLP message)`` pairs, each
    partition's messages at offsets 0, 1, ... in order, with ``config``'s window settings;
    ``tokens``: with token accounting (the config's prices)."""
    settings = load_settings(config)
    ms = settings.metrics
    prices = settings.tokens.price_table() if tokens else None
    pre = PreAggregator(
        ms.window_settings(), SeriesKeyer(ms.dimensions, ms.max_series), lambda: 0, prices
    )
    offsets: dict[int, int] = {}
    partials = []
    for part, value in msgs:
        offset = offsets.get(part, 0)
        partials += pre.add_message(part, offset, ingest_message(value).spans)
        offsets[part] = offset + 1
    return close_offline(partials)
