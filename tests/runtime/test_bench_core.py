"""``spanwatch bench ingest`` measures the core in one process (``core_pass``): it must do the
worker's whole work, or its number would flatter the core."""

from __future__ import annotations

from spanwatch.devtools.bench import _messages, core_pass, per_trace
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
