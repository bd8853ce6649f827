"""The alert manager's agent as a pure driver (pipeline/alerting/driver.py): each message of
``spanwatch.alerting`` in, the agent's commands out; loading after a takeover, deliveries
started once, silences published. No broker, no sleeps."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from spanwatch.pipeline.alerting.driver import AlertingDriver
from spanwatch.pipeline.alerting.evaluate import RuleEvaluator
from spanwatch.pipeline.alerting.manager import AlertManager
from tests.alerting.test_alert_lifecycle import ruleset, window

T = 1_700_000_000.0


def _samples(rs: Any, rec: dict[str, Any]) -> list[dict[str, Any]]:
    return [s.to_dict() | {"type": "sample"} for s in RuleEvaluator(rs).samples("metrics", rec)]


def _firing(tmp_path: Path) -> tuple[AlertingDriver, dict[str, Any]]:
    """A driver whose Errors alert fires and whose group waits 10 s to notify; the table."""
    rs = ruleset(tmp_path)
    driver, table = AlertingDriver(AlertManager(rs)), {}
    driver.load(table.items())
    for msg in _samples(rs, window(T, errors=0.5)):
        cmds = driver.message(msg, T)
        table.update(cmds.writes)
    assert driver.samples > 0
    return driver, table


def test_a_message_before_the_table_is_loaded_is_refused(tmp_path: Path) -> None:
    driver = AlertingDriver(AlertManager(ruleset(tmp_path)))
    with pytest.raises(RuntimeError, match="load"):
        driver.message({"type": "tick"}, T)


def test_a_firing_alert_is_recorded_saved_and_notified_once_while_it_is_delivered(
    tmp_path: Path,
) -> None:
    rs = ruleset(tmp_path)
    driver = AlertingDriver(AlertManager(rs))
    driver.load([])
    records, writes = [], []
    for msg in _samples(rs, window(T, errors=0.5)):
        cmds = driver.message(msg, T)
        records += cmds.records
        writes += cmds.writes
    assert [(r["alertname"], r["status"]) for r in records] == [("Errors", "firing")]
    assert writes  # the alert and its group are saved with the message
    assert driver.message({"type": "tick"}, T + 5).deliveries == []  # group_wait: 10s
    (p,) = driver.message({"type": "tick"}, T + 11).deliveries
    # while it runs (no outcome yet) it is never started again
    assert driver.message({"type": "tick"}, T + 12).deliveries == []
    done = driver.message({"type": "delivery", "id": p.id, "outcome": "ok"}, T + 13)
    assert done.deliveries == [] and p.id not in driver.in_flight
    assert any(k == p.id or v is None for k, v in done.writes)  # the outbox entry is gone


def test_an_outcome_that_could_not_be_recorded_is_started_again_when_due(
    tmp_path: Path,
) -> None:
    driver, _ = _firing(tmp_path)
    (p,) = driver.message({"type": "tick"}, T + 11).deliveries
    driver.not_recorded(p.id)
    (again,) = driver.message({"type": "tick"}, T + 12).deliveries
    assert again.id == p.id


def test_a_takeover_restores_pending_notifications_from_the_table(tmp_path: Path) -> None:
    first, table = _firing(tmp_path)
    tick = first.message({"type": "tick"}, T + 11)
    (p,) = tick.deliveries  # started, and then the worker dies before its outcome
    table.update(tick.writes)
    successor = AlertingDriver(AlertManager(ruleset(tmp_path)))
    line = successor.load(table.items())
    assert "1 pending notifications" in line
    (again,) = successor.message({"type": "tick"}, T + 12).deliveries
    assert (again.id, again.receiver) == (p.id, "team")
    successor.assigned()  # a new assignment: loaded again before the next message
    with pytest.raises(RuntimeError):
        successor.message({"type": "tick"}, T + 12)


def test_silences_are_saved_published_and_unknown_ones_reported(tmp_path: Path) -> None:
    driver, _ = _firing(tmp_path)
    silence = {
        "id": "s1",
        "matchers": ['alertname="Errors"'],
        "starts_at": T,
        "ends_at": T + 3600,
    }
    added = driver.message({"type": "silence_add", "silence": silence}, T + 1)
    ((sid, value),) = added.silences()
    assert sid == "s1" and value is not None and value["matchers"] == silence["matchers"]
    assert added.notes and added.notes[0][0] == logging.INFO
    gone = driver.message({"type": "silence_expire", "id": "nope"}, T + 2)
    assert gone.notes == [(logging.WARNING, "silence nope: not found or already expired")]
