"""Worker health from partition states: lag, last event per stage, stalls, readiness."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from spanwatch.devtools.broker import free_port
from spanwatch.pipeline.common.health import HealthTracker, PartitionState
from spanwatch.runtime.httpserver import serve
from spanwatch.runtime.prom import _health_families

STAGES = {
    "spanwatch.ingest": frozenset({"otlp_spans"}),
    "spanwatch.merge": frozenset({"spanwatch.partials"}),
}


def states(ingest_committed: int, merge_committed: int | None = 5) -> dict:
    return {
        ("otlp_spans", 0): PartitionState(end=12, committed=ingest_committed, read=11),
        ("spanwatch.partials", 0): PartitionState(end=5, committed=merge_committed, read=4),
    }


def test_a_stage_with_lag_and_no_progress_is_stalled_after_the_wait() -> None:
    h = HealthTracker(STAGES, stall_after_s=30)
    r = h.update(0.0, states(8), joined=True, recovering=False)
    assert r["state"] == "running" and r["ready"]
    assert r["stages"]["spanwatch.ingest"]["lag"] == 4
    assert r["stages"]["spanwatch.merge"]["lag"] == 0
    r = h.update(29.0, states(8), joined=True, recovering=False)
    assert r["state"] == "running"
    r = h.update(31.0, states(8), joined=True, recovering=False)
    assert r["state"] == "stalled" and r["stalled"] == ["spanwatch.ingest"]
    assert not r["ready"] and not r["stages"]["spanwatch.merge"]["stalled"]
    healthy, ready, _ = h.status(31.5, max_age_s=10)
    assert (healthy, ready) == (False, False)
    r = h.update(32.0, states(12), joined=True, recovering=False)  # it caught up
    assert r["state"] == "running" and r["stages"]["spanwatch.ingest"]["lag"] == 0


def test_progress_keeps_a_busy_stage_running_and_recovery_is_not_a_stall() -> None:
    h = HealthTracker(STAGES, stall_after_s=30)
    for t in range(0, 120, 10):  # a backlog that is being worked through
        r = h.update(float(t), states(1 + t // 10), joined=True, recovering=False)
        assert r["state"] == "running", t
    h = HealthTracker(STAGES, stall_after_s=30)
    h.update(0.0, states(1), joined=True, recovering=True)
    r = h.update(100.0, states(1), joined=True, recovering=True)  # restoring tables
    assert r["state"] == "recovering" and not r["ready"] and not r["stalled"]
    assert h.status(100.0, 10)[:2] == (True, False)


def test_last_event_per_stage_and_a_blocked_loop() -> None:
    h = HealthTracker(STAGES, stall_after_s=30)
    h.update(0.0, states(8), joined=True, recovering=False)
    later = states(8)
    later[("otlp_spans", 0)] = PartitionState(end=13, committed=8, read=12)  # a new record
    r = h.update(5.0, later, joined=True, recovering=False)
    assert r["stages"]["spanwatch.ingest"]["last_event_ago_s"] == 0.0
    assert r["stages"]["spanwatch.merge"]["last_event_ago_s"] is None  # none since start
    healthy, ready, report = h.status(16.0, max_age_s=10)  # no update for 11 s
    assert (healthy, ready, report["state"]) == (False, False, "unresponsive")
    assert HealthTracker(STAGES).status(0.0, 10)[:2] == (True, False)  # not started yet


def test_revoked_partitions_are_forgotten() -> None:
    h = HealthTracker(STAGES, stall_after_s=30)
    h.update(0.0, states(8), joined=True, recovering=False)
    r = h.update(
        40.0, {("spanwatch.partials", 0): PartitionState(5, 5, 4)}, joined=True, recovering=False
    )
    assert r["state"] == "running" and [p["topic"] for p in r["partitions"]] == [
        "spanwatch.partials"
    ]


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture
def server_and_tracker():  # type: ignore[no-untyped-def]
    h = HealthTracker(STAGES, stall_after_s=30)
    port = free_port()
    registry = CollectorRegistry()
    server = serve(port, "127.0.0.1", h, registry)
    try:
        yield port, h
    finally:
        server.shutdown()
        server.server_close()


def test_endpoints_answer_with_codes_a_probe_understands(server_and_tracker) -> None:  # type: ignore[no-untyped-def]
    port, h = server_and_tracker
    assert get(port, "/readyz")[0] == 503  # no report yet: starting
    assert get(port, "/healthz")[0] == 200
    import time

    now = time.monotonic()
    h.update(now, states(8), joined=True, recovering=False)
    assert get(port, "/readyz")[0] == 200 and get(port, "/healthz")[0] == 200
    code, body = get(port, "/status")
    report = json.loads(body)
    assert code == 200 and report["stages"]["spanwatch.ingest"]["lag"] == 4
    h.update(now + 31, states(8), joined=True, recovering=False)
    h.updated_at = time.monotonic()  # keep the report fresh for the probe
    code, body = get(port, "/healthz")
    assert code == 503 and json.loads(body)["stalled"] == ["spanwatch.ingest"]
    assert get(port, "/nope")[0] == 404
    assert get(port, "/metrics")[0] == 200


def test_health_is_exported_to_prometheus() -> None:
    h = HealthTracker(STAGES, stall_after_s=30)
    h.update(0.0, states(8), joined=True, recovering=False)
    fams = {f.name: f for f in _health_families(h.report)}
    assert fams["spanwatch_worker_ready"].samples[0].value == 1.0
    lags = {
        (s.labels["topic"], s.labels["partition"]): s.value
        for s in fams["spanwatch_consumer_lag_records"].samples
    }
    assert lags == {("otlp_spans", "0"): 4, ("spanwatch.partials", "0"): 0}
