"""``spanwatch bench ingest`` measures the core in one process (``core_pass``): it must do the
worker's whole work, or its number would flatter the core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spanwatch.devtools.bench import _messages, core_pass, per_trace
from spanwatch.devtools.bench_read import bench_read
from spanwatch.devtools.proc import RUNNING
from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.tokens.burn import counted_calls
from spanwatch.pipeline.windows.merge import MergeStage


def _model_requests(stage: MergeStage) -> int:
    """Calls counted in every model's 10-second token windows (on time or late), over every
    partition."""
    return sum(
        agg.requests + agg.late
        for ps in stage.partitions.values()
        for sid, state in ps.states.items()
        if sid.startswith('["@tokens","model"')
        for wid, agg in state.windows.items()
        if wid.startswith("10s@")
    )


def test_the_core_pass_counts_every_call_once_in_either_shape() -> None:
    msgs, _ = _messages(3000, 500)
    # each call once, whatever messages its trace was split over: the outermost LLM span
    # with usage of the whole trace (a call and its model server's span are one call)
    spans = [s for m in msgs for s in ingest_message(m).spans]
    calls = sum(1 for s in counted_calls(spans) if s.end_ns > 0)
    assert calls > 100
    assert _model_requests(core_pass(msgs)) == calls
    assert _model_requests(core_pass([v for _, v in per_trace(msgs)])) == calls


@pytest.mark.broker
def test_the_read_bench_reads_every_message_with_every_client(
    capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``spanwatch bench read``: each reader (faust events, faust take, aiokafka getmany,
    confluent consume) reads every message of the per-trace topic, or the bench fails; and
    it stops what it started and leaves nothing in the folder it was run from."""
    monkeypatch.chdir(tmp_path)
    msgs, total = _messages(1500, 500)
    keyed = per_trace(msgs)
    assert bench_read(keyed, total) == 0
    rows = [
        line.split("|")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ") and "reader" not in line
    ]
    assert len(rows) == 4
    assert all(int(r[2].strip().replace(",", "")) == len(keyed) for r in rows)
    assert not RUNNING
    assert list(tmp_path.iterdir()) == []  # faust's data folders went to the bench's own


@pytest.mark.broker
def test_the_burst_bench_drains_both_loads_and_reports_the_worker_peak(capsys: Any) -> None:
    """``spanwatch bench burst``: both loads are processed to the end (the phases wait for
    every message committed and every stage drained), the peak is the kernel's and never
    below a sample, and the broker and worker it started are stopped."""
    from spanwatch.devtools.bench_burst import bench_burst

    assert bench_burst(spans=400, factor=2) == 0
    rows = [
        [c.strip().replace(",", "") for c in line.split("|")[1:-1]]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ") and "phase" not in line
    ]
    assert [r[0] for r in rows] == ["steady", "2x burst"]
    steady, burst = rows
    assert int(burst[1]) >= 2 * int(steady[1]) - 50  # spans: about twice the steady load
    for r in rows:
        assert int(r[2]) > 0 and float(r[4]) > 0  # messages, and CPU spent on them
        assert int(r[7]) >= int(r[6]) > 0  # VmHWM is at least the largest sample
    assert not RUNNING
