"""What the web view draws (pipeline/view/dashboard.py): windows charted in order and once, token
totals summed once per window, events bounded and newest first, alerts by fingerprint,
silences added and forgotten."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from spanwatch.pipeline.view.dashboard import Dashboard, apply_delta

NS = 10**9
SERIES = {"service": "app", "layer": "model-server", "operation": "inference", "model": "q"}


def window(start_s: int, name: str = "10s", **values: Any) -> dict[str, Any]:
    return {
        "series": SERIES,
        "window": {"name": name, "start_ns": start_s * NS, "end_ns": (start_s + 10) * NS},
        "count": values.get("count", 4),
        "rate_per_s": values.get("rate", 0.4),
        "errors": 0,
        "error_rate": 0.0,
        "ttft_s": {"p50": values.get("ttft", 0.2), "p95": values.get("ttft", 0.2) * 2},
        "time_share": {"decode": 0.9, "queue": 0.1},
        "exemplars": {"slowest_trace_id": f"t{start_s}"},
    }


def token_window(kind: str, ident: str, start_s: int, tokens: int, name: str = "10s") -> dict:
    return {
        "type": "window",
        "entity": {"kind": kind, "id": ident},
        "window": {"name": name, "start_ns": start_s * NS},
        "requests": 1,
        "input_tokens": tokens,
        "output_tokens": 1,
        "cost": {"USD": 0.5},
    }


def test_windows_are_charted_in_start_order_once_and_bounded() -> None:
    d = Dashboard(points=3)
    for start, ttft in ((20, 0.3), (0, 0.1), (10, 0.2), (10, 0.2), (30, 0.4)):
        d.add("metrics", '["app"]', window(start, ttft=ttft))
    d.add("metrics", '["app"]', window(0, name="1m"))  # another window shape: not charted
    (s,) = d.snapshot()["series"]
    assert s["t"] == [10.0, 20.0, 30.0]  # the oldest went, the repeat of 10 s is kept once
    assert s["ttft_p50"] == [0.2, 0.3, 0.4] and s["ttft_p95"] == [0.4, 0.6, 0.8]
    assert s["labels"] == SERIES and s["exemplars"] == {"slowest_trace_id": "t30"}
    assert s["time_share"] == {"decode": 0.9, "queue": 0.1}
    assert d.window == "10s"


def test_token_totals_count_each_window_once_and_rank_top_consumers() -> None:
    d = Dashboard(top_n=2)
    for ident, start, tokens in (("u1", 0, 10), ("u1", 0, 10), ("u1", 10, 5), ("u2", 0, 30)):
        d.add("tokens", None, token_window("user", ident, start, tokens))
    d.add("tokens", None, token_window("user", "u3", 0, 1))
    top = d.snapshot()["tokens"]["user"]
    assert [(t["id"], t["input_tokens"], t["requests"]) for t in top] == [
        ("u2", 30, 1),
        ("u1", 15, 2),
    ]
    assert top[1]["cost"] == {"USD": 1.0}


def test_events_are_bounded_and_newest_first() -> None:
    d = Dashboard(recent=2)
    for i in range(3):
        d.add("tokens", None, {"type": "black_hole", "entity": {"kind": "trace", "id": str(i)}})
        d.add("findings", None, {"type": "finding", "kind": "pii", "severity": "high", "n": i})
    d.add("findings", None, {"type": "evaluation", "kind": "judge", "flagged": False})
    snap = d.snapshot()
    assert [b["entity"]["id"] for b in snap["black_holes"]] == ["2", "1"]
    assert [f["n"] for f in snap["findings"]] == [2, 1]
    assert snap["finding_counts"] == {"pii/high": 3}  # a judge's pass is not a finding


def test_alerts_by_fingerprint_firing_first_and_silences_forgotten() -> None:
    d = Dashboard()
    d.add("alerts", "a", {"fingerprint": "a", "alertname": "Slow", "status": "firing", "at": 1})
    d.add("alerts", "b", {"fingerprint": "b", "alertname": "Pii", "status": "firing", "at": 2})
    d.add("alerts", "a", {"fingerprint": "a", "alertname": "Slow", "status": "resolved", "at": 3})
    d.add("silences", "s1", {"id": "s1", "matchers": ['model="q"'], "ends_at": 9})
    snap = d.snapshot()
    assert [(a["alertname"], a["status"]) for a in snap["alerts"]] == [
        ("Pii", "firing"),
        ("Slow", "resolved"),
    ]
    assert [a["status"] for a in snap["alert_changes"]] == ["resolved", "firing", "firing"]
    assert [s["id"] for s in snap["silences"]] == ["s1"]
    d.add("silences", "s1", None)  # a tombstone: the silence is gone
    assert d.snapshot()["silences"] == []


def test_anomaly_scores_keep_the_latest_expected_range_per_series_and_signal() -> None:
    d = Dashboard()
    base = {"signal": "ttft_p95", "unit": "s", "labels": SERIES, "window": {"end_ns": 1}}
    d.add("anomalies", "k", {**base, "type": "score", "value": 1.0, "expected": None})
    d.add("anomalies", "k", {**base, "type": "score", "value": 2.0, "expected": {"low": 0.1}})
    d.add("anomalies", "k", {**base, "type": "anomaly", "state": "start", "value": 2.0})
    snap = d.snapshot()
    assert [(e["value"], e["expected"]) for e in snap["expected"]] == [(2.0, None)]
    assert [a["state"] for a in snap["anomalies"]] == ["start"]


def test_the_version_moves_only_when_the_picture_changes() -> None:
    d = Dashboard()
    d.add("metrics", None, window(0))
    v = d.version
    d.add("metrics", None, {"not": "a window"})
    d.add("payloads", None, {"type": "payload"})  # a topic the view does not draw
    d.add("findings", None, "not an object")
    assert d.version == v


def test_detectors_still_learning_say_until_when() -> None:
    """The demo showed "no anomalies" from start to end: its detectors were in their grace
    period. The view says so, and when the first scores are due."""
    d = Dashboard()
    base = {"type": "score", "signal": "ttft_p95", "labels": SERIES, "window": {"end_ns": 60 * NS}}
    d.add("anomalies", "a", {**base, "learning": {"seen": 3, "needed": 50, "ready_at_ns": 9 * NS}})
    d.add("anomalies", "b", {**base, "learning": {"seen": 9, "needed": 50, "ready_at_ns": 5 * NS}})
    assert d.snapshot()["anomaly_learning"] == {"series": 2, "ready_at_ns": 5 * NS}
    d.add("anomalies", "b", {**base, "score": 0.1})  # b has learned
    assert d.snapshot()["anomaly_learning"] == {"series": 1, "ready_at_ns": 9 * NS}


def test_a_window_far_older_than_the_newest_is_not_charted() -> None:
    """Charts began four minutes before the demo: one back-dated window stretched the x-axis.
    A window more than ``points`` windows before the newest one seen is not charted."""
    d = Dashboard(points=5)
    d.add("metrics", "s", window(1000))
    d.add("metrics", "s", window(1000 - 60))  # 6 windows back: beyond the charts' span
    d.add("metrics", "s", window(1000 - 40))
    assert d.snapshot()["series"][0]["t"] == [960.0, 1000.0]


def _record(draw: Any) -> tuple[str, str | None, Any]:
    kind = draw(st.sampled_from(["metrics", "metrics", "metrics", "anomalies", "alerts", "x"]))
    ident = draw(st.sampled_from("abcd"))
    start = draw(st.integers(0, 12)) * 10
    if kind == "metrics":
        rec = window(start, ttft=draw(st.floats(0.01, 5)))
        rec["series"] = {**SERIES, "service": ident}
        return kind, ident, rec
    if kind == "anomalies":
        rec = {"type": "score", "signal": "ttft_p95", "labels": {"service": ident}, "value": start}
        return kind, ident, rec
    if kind == "alerts":
        return kind, ident, {"fingerprint": ident, "status": "firing", "at": start}
    return "findings", None, {"type": "finding", "kind": "pii", "severity": "low", "n": start}


def _normal(snap: dict[str, Any]) -> dict[str, Any]:
    """A snapshot with its keyed lists as maps: the page keys series and ranges by id."""
    out = {k: v for k, v in snap.items() if k not in ("kind", "since", "removed")}
    out["series"] = {s["id"]: s for s in snap["series"]}
    out["expected"] = {e["id"]: e for e in snap["expected"]}
    return out


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_deltas_merged_into_an_old_snapshot_give_the_new_one(data: st.DataObject) -> None:
    """A page keeps the first snapshot and merges deltas (issue 28: a tab received 335 KB a
    second). Whatever arrives between two pushes, caps pushing series out included, the page
    ends where a fresh snapshot would, and a repeated or older delta changes nothing."""
    d = Dashboard(
        points=4, max_series=3, max_expected=2, max_gone=data.draw(st.sampled_from([2, 1000]))
    )
    page = d.snapshot()
    versions = [d.version]
    for _ in range(data.draw(st.integers(1, 6))):
        for _ in range(data.draw(st.integers(0, 12))):
            d.add(*_record(data.draw))
        since = data.draw(st.sampled_from(versions))
        delta = d.delta(since)
        if delta is None:  # older than the removals kept: the page takes a snapshot
            assert since < d.gone_floor
            delta = d.snapshot()
        else:
            assert orjson.dumps(delta)  # JSON-ready
        apply_delta(page, delta)
        assert _normal(page) == _normal(d.snapshot())
        apply_delta(page, delta)  # the same delta again (a reconnect): nothing changes
        assert _normal(page) == _normal(d.snapshot())
        versions.append(d.version)


def test_a_delta_carries_only_what_changed() -> None:
    d = Dashboard()
    for i in range(50):
        d.add("metrics", f"s{i}", window(0) | {"series": {**SERIES, "service": f"s{i}"}})
    v = d.version
    d.add("metrics", "s7", window(10) | {"series": {**SERIES, "service": "s7"}})
    delta = d.delta(v)
    assert delta is not None
    (part,) = delta["series"]
    assert part["id"] == "s7" and part["t"] == [10.0] and "labels" not in part
    assert not delta["expected"] and "alerts" not in delta and "tokens" not in delta
    assert d.delta(d.version + 1) is None  # a version this picture never had
    assert len(orjson.dumps(delta)) * 20 < len(orjson.dumps(d.snapshot()))
