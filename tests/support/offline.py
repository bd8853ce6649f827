"""The offline pipeline that broker tests compare a live worker against."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spanwatch.pipeline.config import load_settings
from spanwatch.pipeline.ingest.message import IngestOptions, ingest_message
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.merge import MergeStage, WindowOutput
from spanwatch.pipeline.windows.partial import Partial
from spanwatch.pipeline.windows.preaggregate import PreAggregator, prompt_partials
from spanwatch.pipeline.windows.spec import WindowSpec
from spanwatch.pipeline.windows.state import ClosedWindow, close_offline


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


def offline_clusters(msgs: Iterable[tuple[int, bytes]], config: Path) -> list[dict[str, Any]]:
    """Every prompt-cluster window record the pure pipeline closes for the same input: the
    partials ingest makes (a prompt late as its span is late), merged and clustered as one
    owner does at the end of input."""
    settings = load_settings(config)
    cs, ms = settings.clusters, settings.metrics
    pre = PreAggregator(ms.window_settings(), SeriesKeyer(ms.dimensions, ms.max_series), lambda: 0)
    spec = WindowSpec.parse(cs.window)
    stage = MergeStage(
        {}, lateness_ns=0, min_step_ns=spec.step_ns, idle_ns=2**62, budgets={}, clusters=cs
    )
    offsets: dict[int, int] = {}
    by_owner: dict[str, list[Partial]] = {}
    for part, value in msgs:
        offset = offsets.get(part, 0)
        result = ingest_message(value, options=IngestOptions(collect_content=True))
        pre.add_message(part, offset, result.spans)  # the partition's clock, as a worker's
        clock = pre.clock(part)
        for p in prompt_partials(part, offset, result.spans, result.contents, cs, clock=clock):
            by_owner.setdefault(p.series, []).append(p)
        offsets[part] = offset + 1
    out = WindowOutput(SeriesKeyer(settings.metrics.dimensions), smallest=cs.window)
    records = []
    for i, (_, partials) in enumerate(sorted(by_owner.items())):
        stage.apply_bundle(i, partials)
        records += [out.record(c)[1] for c in stage.apply_watermark(i, 0, 2**62, 1)]
    return records
