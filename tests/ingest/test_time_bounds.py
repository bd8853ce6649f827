"""Event time bounded by wall time: one span from the future (a corrupt timestamp, a host's
clock ahead) never moves a partition's watermark, and spans nobody can place in time go to the
dead-letter topic instead of being counted."""

from __future__ import annotations

import json

from spanwatch.pipeline.ingest.message import TimeBounds, ingest_message
from spanwatch.pipeline.ingest.otlp import decode
from tests.builders import T0, default_preaggregator, span, traces
from tests.support.otlp_json import otlp_json

NS = 10**9
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "qwen-max",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 20,
}
YEAR_2200 = 7_258_118_400 * NS


def _call(end: int, span_id: bytes = b"\x01" * 8, **kw: object) -> object:
    return span(CHAT, start=end - 2 * NS, end=end, span_id=span_id, **kw)  # type: ignore[arg-type]


def test_the_bounds() -> None:
    b = TimeBounds(wall_ns=T0, broker_ns=T0 - NS, max_future_ns=5 * NS, max_skew_ns=3600 * NS)
    assert b.check(T0) == 0 and b.check(T0 + 5 * NS) == 0 and b.check(0) == 0
    assert b.check(T0 + 6 * NS) == 6 * NS  # ahead: moved back by this much
    assert b.check(T0 + 3601 * NS) == -1  # beyond any skew: out of range
    assert b.check(T0 - NS - 3600 * NS) == 0  # an hour before the broker's timestamp is fine
    assert b.check(T0 - 2 * NS - 3600 * NS) == -1  # beyond it is not
    assert b.check(1) == -1  # 1970


def test_a_span_ahead_of_the_clock_is_moved_back_with_its_shape() -> None:
    events = [("gen_ai.content.first_token", T0 + 600 * NS - NS, {})]
    value = traces(_call(T0 + 600 * NS, events=events)).SerializeToString()
    result = ingest_message(value, wall_ns=T0)
    (rec,) = result.spans
    assert (rec.start_ns, rec.end_ns) == (T0 - 2 * NS, T0)
    assert rec.duration_s == 2.0 and rec.ttft_s == 1.0  # what the span measured is kept
    assert "clock_skew:future" in rec.issues and result.future_shifted == 1
    assert not result.dead_letters


def test_spans_from_2200_and_1970_are_dead_letters_alone() -> None:
    good = _call(T0 - NS, span_id=b"\x02" * 8)
    value = traces(good, _call(YEAR_2200), _call(5 * NS, span_id=b"\x03" * 8)).SerializeToString()
    result = ingest_message(value, wall_ns=T0, broker_ns=T0)
    assert [r.span_id for r in result.spans] == ["02" * 8]
    assert result.out_of_range == 2 and result.rejected == 2 and result.seen == 3
    (dl,) = result.dead_letters
    assert dl.reason == "timestamp_out_of_range" and dl.scope == "spans"
    # the dead letter holds only those spans, in the source encoding, with their resource:
    # replayed, they decode to the same spans (and never duplicate the good one)
    again = decode(dl.value)
    assert sorted(v.end_ns for v in again.spans) == [5 * NS, YEAR_2200]
    assert {v.resource["service.name"] for v in again.spans} == {"chat-app"}


def test_offline_tools_take_every_timestamp_as_it_is() -> None:
    value = traces(_call(YEAR_2200)).SerializeToString()
    assert ingest_message(value).spans[0].end_ns == YEAR_2200


def test_a_span_from_2200_does_not_make_the_partition_late() -> None:
    """The fault found by the held-out run: one such message left 5.6% of good tokens."""
    pre = default_preaggregator()
    spans = ingest_message(traces(_call(YEAR_2200)).SerializeToString(), wall_ns=T0).spans
    pre.add_message(0, 0, spans)
    good = ingest_message(traces(_call(T0 - NS)).SerializeToString(), wall_ns=T0).spans
    partials = pre.add_message(0, 1, good)
    assert pre.late_spans == 0 and partials
    assert pre.clock(0).watermark_ns <= T0


def test_json_beyond_64_bits_is_a_record_with_its_problems() -> None:
    doc = json.loads(otlp_json(traces(_call(T0))))
    sp = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    sp["endTimeUnixNano"] = str(2**64 + 5)
    sp["attributes"].append({"key": "gen_ai.usage.total_tokens", "value": {"intValue": 2**70}})
    result = ingest_message(json.dumps(doc).encode(), wall_ns=T0)
    (rec,) = result.spans
    assert rec.end_ns == 0 and "missing:timestamp" in rec.issues
    assert rec.total_tokens is None and "out_of_range:gen_ai.usage.total_tokens" in rec.issues
