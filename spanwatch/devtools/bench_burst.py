"""``spanwatch bench burst``: a worker's memory under a 10x burst.

One worker, every stage, the collector's per-trace shape (one message per trace, keyed by
trace id). First a steady load (``spans`` spans at the generated traffic rate), drained;
then ``factor`` times as many spans at ``factor`` times the rate (the same stretch of span
time, so ``factor`` times the traces, sessions and series in each open window), produced at
once, drained. The backlog is the broker's to hold: the worker reads it at its own pace,
and what it keeps (open windows, joined traces, held batches, stream buffers) has caps.

Printed per phase: wall time, CPU µs/span, the source lag at its largest, and the worker's
resident memory (``VmRSS`` sampled with every ``/status`` poll, and ``VmHWM``, the kernel's
own peak). Bounded means the burst's growth over the idle worker is far from ``factor``
times the steady load's.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bench import TRAFFIC_RATE, _cpu_s, _messages, drained, per_trace
from .broker import EmbeddedBroker
from .cluster import WorkerProc, produce

MIB = 1024 * 1024


def _memory(pid: int) -> tuple[int, int]:
    """(resident, peak resident) bytes of a process, from /proc."""
    got = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            got[key] = int(value.split()[0]) * 1024
    return got["VmRSS"], got["VmHWM"]


@dataclass
class Phase:
    label: str
    spans: int
    messages: int
    wall_s: float
    cpu_s: float
    max_lag: int  # source records written and not yet processed, at the largest seen
    max_rss: int  # largest VmRSS sampled
    peak: int  # VmHWM at the end: the process's peak so far

    def row(self, idle: int) -> str:
        return (
            f"| {self.label} | {self.spans:,} | {self.messages:,} | {self.wall_s:,.1f} | "
            f"{self.cpu_s / self.spans * 1e6:,.1f} | {self.max_lag:,} | "
            f"{self.max_rss / MIB:,.0f} | {self.peak / MIB:,.0f} | "
            f"{(self.peak - idle) / MIB:+,.0f} |"
        )


def _phase(
    worker: WorkerProc, bootstrap: str, label: str, keyed: list[tuple[bytes, bytes]], spans: int
) -> Phase:
    assert worker.proc is not None
    pid = worker.proc.pid
    before = worker.until(lambda st: True, 30, "answering")
    done = sum(r["committed"] or 0 for r in before["partitions"] if r["topic"] == "otlp_spans")
    t0, c0 = time.monotonic(), _cpu_s(pid)
    seen = {"lag": 0, "rss": 0}

    def check(st: dict[str, Any]) -> bool:
        rss, _ = _memory(pid)
        seen["rss"] = max(seen["rss"], rss)
        lag = sum(r["lag"] or 0 for r in st["partitions"] if r["topic"] == "otlp_spans")
        seen["lag"] = max(seen["lag"], lag)
        return drained(st, done + len(keyed))

    produce(bootstrap, "otlp_spans", keyed)
    worker.until(check, 3600, f"drained after {label}")
    t1, c1 = time.monotonic(), _cpu_s(pid)
    rss, peak = _memory(pid)
    return Phase(
        label, spans, len(keyed), t1 - t0, c1 - c0, seen["lag"], max(seen["rss"], rss), peak
    )


def bench_burst(spans: int = 20_000, factor: int = 10, config: str = "") -> int:
    from spanwatch.pipeline.config import TopicSettings

    workdir = Path(tempfile.mkdtemp(prefix="spanwatch-burst-"))
    with EmbeddedBroker(
        topics=TopicSettings().all_topics(), partitions=4, log_path=workdir / "tansu.log"
    ) as b:
        cfg = workdir / "spanwatch.yaml"
        cfg.write_text(f"{config.strip()}\nworker: {{stall_after: 10m}}\n")
        worker = WorkerProc(b.bootstrap, workdir, config=cfg).launch()
        try:
            worker.until(lambda st: st["state"] in ("running", "stalled"), 120, "started")
            assert worker.proc is not None
            idle, _ = _memory(worker.proc.pid)
            # each load is made right before it is produced: its spans end now, as live
            # traffic's do (made earlier, an idle partition's clock would make them late)
            msgs, total = _messages(spans, 500, seed=1)
            steady = _phase(worker, b.bootstrap, "steady", per_trace(msgs), total)
            msgs, total = _messages(spans * factor, 500, seed=2, rate=TRAFFIC_RATE * factor)
            burst = _phase(worker, b.bootstrap, f"{factor}x burst", per_trace(msgs), total)
        finally:
            worker.stop()
    print(
        f"one worker, every stage{' (' + config.strip() + ')' if config.strip() else ''}, "
        f"one message per trace; steady load at {TRAFFIC_RATE:,.0f} spans/s of span time, "
        f"then {factor}x the spans at {factor}x the rate; idle worker RSS {idle / MIB:,.0f} MiB"
    )
    print(
        "| phase | spans | messages | wall s | CPU µs/span | source lag, largest | "
        "RSS sampled, largest MiB | peak RSS (VmHWM) MiB | peak over idle MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for p in (steady, burst):
        print(p.row(idle))
    grow_steady, grow_burst = steady.peak - idle, burst.peak - idle
    print(
        f"peak growth over the idle worker: burst / steady = {grow_burst / max(grow_steady, 1):.2f}"
        f" (the spans were {burst.spans / steady.spans:.1f}x)"
    )
    return 0
