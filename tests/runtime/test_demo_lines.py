"""The demo's alert lines say what crossed what, and show each alert once."""

from __future__ import annotations

import json
from typing import Any

from spanwatch.devtools.demo import Summary, alert_line
from spanwatch.devtools.traffic import LiveExport, TrafficGenerator


def _alert(status: str, value: float, at: float, fp: str = "f1") -> dict[str, Any]:
    return {
        "type": "alert",
        "status": status,
        "alertname": "SlowModel",
        "fingerprint": fp,
        "labels": {"alertname": "SlowModel", "model": "qwen", "severity": "page"},
        "annotations": {"summary": f"TTFT p95 of qwen is {value} s (> 1.5 s)"},
        "value": value,
        "signal": "ttft_p95",
        "op": ">",
        "threshold": 1.5,
        "unit": "s",
        "at": at,
    }


def test_a_firing_and_a_resolved_line_say_what_crossed_what() -> None:
    assert alert_line(_alert("firing", 1.7, 1)).startswith(
        "  FIRING   SlowModel: ttft_p95 1.7 s > 1.5 s; TTFT p95 of qwen is 1.7 s"
    )
    line = alert_line(_alert("resolved", 0.677, 2))
    assert line == "  resolved SlowModel model=qwen: ttft_p95 677 ms <= 1.5 s"


def test_each_alert_is_shown_once_in_its_latest_state() -> None:
    s = Summary()
    for a in (
        _alert("firing", 1.7, 1),
        _alert("resolved", 0.68, 2),
        _alert("firing", 2.0, 3, "f2"),
    ):
        s.add_alert(json.dumps(a).encode())
    lines = s._alert_lines()
    assert len(lines) == 3 and lines[1].startswith("  FIRING   SlowModel") and "2 s" in lines[1]
    assert lines[2].startswith("  resolved SlowModel") and sum("f1" in x for x in lines) == 0
    assert sum(line.strip().startswith(("FIRING", "resolved")) for line in lines) == 2


def test_a_resolved_alert_whose_last_value_still_breaches_says_it_went_quiet() -> None:
    # an event rule resolves after keep_firing_for with no sample back under the threshold
    line = alert_line(
        {**_alert("resolved", 0.99, 2), "signal": "pii/cn_id", "threshold": 0, "unit": ""}
    )
    assert line.endswith(": quiet (last pii/cn_id 0.99 > 0)"), line
    assert "<=" not in line


def test_the_demo_sends_each_span_once_it_has_ended() -> None:
    """Charts began four minutes before the demo: a 24-step agent trace was laid out back
    from "now" and sent whole. Traces now begin at "now" and each span goes out once ended."""
    gen = TrafficGenerator(3, runaway_every=1)  # every trace a long agent loop
    live = LiveExport()
    now = 1_000 * 10**9
    trace = next(gen.batches(1, now))
    total = trace.count()
    live.start(trace, now)
    sent: list[Any] = []
    t = now
    while len(sent) < total:
        t += 10**9
        out = live.due(t)
        spans = [s for group in out.groups.values() for s in group]
        assert all(now <= s.start_time_unix_nano and s.end_time_unix_nano <= t for s in spans)
        sent += spans
    assert t - now > 60 * 10**9  # a long trace: its spans went out over more than a minute
    root = next(s for s in sent if not s.parent_span_id)
    assert sent[-1] is root  # the root ends last, so it is sent last


def test_every_firing_alert_name_is_detailed_and_dead_letters_read_as_words() -> None:
    """The final list showed the 4 newest firing alerts: PiiInCompletion and RunawayAgent
    were not detailed. Dead letters printed as a Python dict."""
    s = Summary()
    names = ["PiiInCompletion", "RunawayAgent", "NegativeUserSentiment", "SlowModel"]
    at = 0
    for name in names:
        for i in range(3):  # several alerts of each name
            at += 1
            a = _alert("firing", 2.0, at, f"{name}-{i}") | {"alertname": name}
            s.add_alert(json.dumps(a).encode())
    lines = s._alert_lines()
    for name in names:
        (line,) = [x for x in lines if x.startswith(f"  FIRING   {name}:")]
        assert line.endswith("(+2 more firing)")
    s.deadletters.update({"bad_protobuf": 2, "timestamp_out_of_range": 1})
    head = s.render(5, 10).splitlines()[0]
    assert head.endswith("dead letters 2 bad_protobuf, 1 timestamp_out_of_range"), head
    assert "{" not in head
