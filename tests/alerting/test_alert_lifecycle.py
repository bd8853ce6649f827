"""Alert lifecycle with an injected clock: for, keep_firing_for, grouping, repeat, silences,
inhibition, events, absence, resolve, persistence and delivery bookkeeping. No sleeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spanwatch.pipeline.alerting.evaluate import RuleEvaluator, Sample
from spanwatch.pipeline.alerting.loader import RuleSet, load_rules
from spanwatch.pipeline.alerting.manager import AlertManager
from spanwatch.pipeline.alerting.settings import AlertingSettings
from spanwatch.pipeline.alerting.silences import Silence
from spanwatch.pipeline.common.retry import backoff_s

RULES = """
groups:
  - name: g
    rules:
      - alert: SlowTTFT
        signal: ttft_p95
        threshold: 2.0
        for: 60s
        keep_firing_for: 120s
        by: [service, model]
        labels: {severity: warning}
        annotations: {summary: "TTFT {{ value | duration }} on {{ labels.model }}"}
      - alert: Errors
        signal: error_rate
        threshold: 0.1
        by: [service, model]
        labels: {severity: critical}
      - alert: Pii
        kind: finding
        kinds: [pii]
        keep_firing_for: 300s
        labels: {severity: warning}
        annotations: {summary: "{{ labels.category }} x{{ count }}: {{ excerpt }}"}
      - alert: Quiet
        kind: absent
        for: 600s
        by: [service]
        labels: {severity: warning}
"""
ROUTING = """
route:
  receiver: team
  group_by: [service]
  group_wait: 10s
  group_interval: 60s
  repeat_interval: 3600s
receivers:
  - name: team
    console: true
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [service, model]
templates:
  trace_url: "http://jaeger/trace/{{ trace_id }}"
"""


def ruleset(tmp_path: Path, rules: str = RULES, routing: str = ROUTING) -> RuleSet:
    (tmp_path / "r.yaml").write_text(rules)
    (tmp_path / "am.yaml").write_text(routing)
    return load_rules([tmp_path])


def window(
    end_s: float, model: str = "m", service: str = "chat", ttft: float = 1.0, errors: float = 0.0
) -> dict[str, Any]:
    return {
        "series": {"service": service, "layer": "app", "operation": "chat", "model": model},
        "window": {
            "name": "1m",
            "start_ns": int((end_s - 60) * 1e9),
            "end_ns": int(end_s * 1e9),
            "size_s": 60.0,
            "step_s": 60.0,
        },
        "count": 10,
        "error_rate": errors,
        "errors_by_type": {"Timeout": 3} if errors else {},
        "ttft_s": {"p95": ttft},
        "exemplars": {"slowest_trace_id": "abc123", "error_trace_id": "err999"},
    }


class Harness:
    def __init__(self, rs: RuleSet) -> None:
        self.ev = RuleEvaluator(rs)
        self.am = AlertManager(rs)
        self.records: list[dict[str, Any]] = []

    def feed(self, now: float, rec: dict[str, Any], topic: str = "metrics") -> None:
        for s in self.ev.samples(topic, rec):
            self.records += self.am.observe(s, now)

    def tick(self, now: float) -> None:
        self.records += self.am.tick(now)

    def statuses(self) -> list[tuple[str, str]]:
        return [(r["alertname"], r["status"]) for r in self.records]

    def sent(self) -> list[str]:
        """Deliver everything due (success) and return the titles."""
        titles = []
        for p in self.am.due(1e12):
            titles.append(p.title)
            self.am.delivered(p.id, "ok", "", 0)
        return titles


def test_for_then_firing_then_group_wait_then_one_notification(tmp_path: Path) -> None:
    h = Harness(ruleset(tmp_path))
    h.feed(0, window(0, ttft=3.0))
    assert h.statuses() == [("SlowTTFT", "pending")]
    h.feed(30, window(30, ttft=3.5))
    h.tick(59)
    assert h.statuses() == [("SlowTTFT", "pending")]  # for: 60s not over
    h.feed(60, window(60, ttft=4.1))
    assert h.statuses()[-1] == ("SlowTTFT", "firing")
    rec = h.records[-1]
    assert rec["annotations"]["summary"] == "TTFT 4.1 s on m"
    assert rec["trace_url"] == "http://jaeger/trace/abc123" and rec["value"] == 4.1
    assert "4.1" not in str(rec["labels"])  # values never in labels
    assert h.am.due(65) == []  # group_wait 10s
    h.tick(70)
    due = h.am.due(70)
    assert len(due) == 1 and due[0].title == "[FIRING:1] SlowTTFT (service=chat)"
    assert "TTFT 4.1 s on m" in due[0].body and "http://jaeger/trace/abc123" in due[0].body


def test_keep_firing_for_then_resolved_notification(tmp_path: Path) -> None:
    h = Harness(ruleset(tmp_path))
    h.feed(0, window(0, ttft=3.0))
    h.feed(60, window(60, ttft=3.0))
    h.tick(70)
    assert h.sent() == ["[FIRING:1] SlowTTFT (service=chat)"]
    h.feed(120, window(120, ttft=1.0))  # back to normal
    h.tick(200)
    assert h.statuses()[-1] == ("SlowTTFT", "firing")  # kept firing for 120 s
    h.tick(240)
    assert h.statuses()[-1] == ("SlowTTFT", "resolved")
    assert h.sent() == ["[RESOLVED] SlowTTFT (service=chat)"]
    assert not [a for a in h.am.alerts.values() if a.rule == "SlowTTFT"]  # forgotten
    assert h.am.groups == {}


def test_pending_that_clears_never_notifies(tmp_path: Path) -> None:
    h = Harness(ruleset(tmp_path))
    h.feed(0, window(0, ttft=3.0))
    h.feed(30, window(30, ttft=1.0))
    h.tick(100)
    assert h.statuses() == [("SlowTTFT", "pending"), ("SlowTTFT", "inactive")]
    assert h.sent() == [] and not [a for a in h.am.alerts.values() if a.rule == "SlowTTFT"]


def test_grouping_group_interval_and_repeat(tmp_path: Path) -> None:
    rules = RULES.replace("for: 60s", "for: 0s")
    h = Harness(ruleset(tmp_path, rules))
    h.feed(0, window(0, model="a", ttft=3.0))
    h.feed(5, window(5, model="b", ttft=3.0))
    h.tick(10)
    due = h.am.due(10)
    assert len(due) == 1 and due[0].title == "[FIRING:2] SlowTTFT (service=chat)"
    h.sent()
    h.feed(20, window(20, model="c", ttft=3.0))  # joins the group
    h.tick(69)
    assert h.am.due(69) == []  # group_interval: 60 s after the last flush
    h.tick(70)
    assert h.sent() == ["[FIRING:3] SlowTTFT (service=chat)"]
    for t in (100, 1000, 3000):  # nothing changes: quiet until repeat_interval
        for m in "abc":
            h.feed(t, window(t, model=m, ttft=3.0))
        h.tick(t)
    assert h.sent() == []
    for m in "abc":
        h.feed(3670, window(3670, model=m, ttft=3.0))
    h.tick(3670)
    assert h.sent() == ["[FIRING:3] SlowTTFT (service=chat)"]


def test_silence_create_match_and_expire(tmp_path: Path) -> None:
    rules = RULES.replace("for: 60s", "for: 0s")
    h = Harness(ruleset(tmp_path, rules))
    s = Silence.create(['model="m"', 'alertname=~"Slow.*"'], 0, 1000, "sre", "deploying")
    h.am.add_silence(s)
    h.feed(0, window(0, ttft=3.0))
    h.tick(20)
    assert h.records[-1]["status"] == "firing" and h.records[-1]["silenced"]
    assert h.sent() == []
    assert h.am.expire_silence(s.id, 50)
    assert not h.am.expire_silence(s.id, 60)  # already expired
    h.feed(60, window(60, ttft=3.0))
    h.tick(80)
    assert h.sent() == ["[FIRING:1] SlowTTFT (service=chat)"]
    with pytest.raises(ValueError, match="bad matcher"):
        Silence.create(["model=m"], 0, 10)
    with pytest.raises(ValueError, match="end after"):
        Silence.create(['model="m"'], 10, 10)


def test_critical_inhibits_warning_with_equal_labels(tmp_path: Path) -> None:
    rules = RULES.replace("for: 60s", "for: 0s")
    h = Harness(ruleset(tmp_path, rules))
    h.feed(0, window(0, ttft=3.0, errors=0.5))  # both rules fire for the same series
    h.feed(0, window(0, model="other", ttft=3.0))  # a warning with other labels
    h.tick(20)
    (p,) = h.am.due(20)
    assert p.title == "[FIRING:2] Errors, SlowTTFT (service=chat)"
    lines = [line for line in p.body.splitlines() if line.startswith("- ")]
    assert lines == [
        "- Errors [critical] model=m service=chat",  # console: plain text
        "- SlowTTFT [warning] model=other service=chat",
    ]  # m's warning muted


def test_finding_events_fire_at_once_and_resolve_after_keep_firing_for(tmp_path: Path) -> None:
    h = Harness(ruleset(tmp_path))
    finding = {
        "type": "finding",
        "kind": "pii",
        "category": "cn_mobile",
        "severity": "medium",
        "score": 0.9,
        "excerpt": "call 138******00",
        "role": "output",
        "trace_id": "t1",
        "service": "bot",
        "model": "m",
        "time_ns": 1,
    }
    h.feed(0, finding, "findings")
    h.feed(10, {**finding, "trace_id": "t2"}, "findings")
    assert h.statuses() == [("Pii", "firing")]
    assert h.records[0]["annotations"]["summary"] == "cn_mobile x1: call 138******00"
    h.tick(10)
    assert h.am.due(10)[0].body.count("cn_mobile x2") == 1
    h.tick(309)
    assert h.statuses()[-1] == ("Pii", "firing")
    h.tick(310)
    assert h.statuses()[-1] == ("Pii", "resolved")


def test_absent_fires_after_for_and_resolves_on_data(tmp_path: Path) -> None:
    h = Harness(ruleset(tmp_path))
    h.feed(0, window(0))
    h.tick(599)
    assert ("Quiet", "firing") not in h.statuses()
    h.tick(600)
    assert h.statuses()[-1] == ("Quiet", "firing")
    h.feed(700, window(700))
    h.tick(700)
    assert h.statuses()[-1] == ("Quiet", "resolved")


def test_state_survives_export_and_load(tmp_path: Path) -> None:
    rs = ruleset(tmp_path)
    h = Harness(rs)
    h.feed(0, window(0, ttft=3.0))
    h.feed(60, window(60, ttft=3.0))
    h.am.add_silence(Silence.create(['model="zzz"'], 0, 9999))
    saved = dict(h.am.take_dirty())
    restored = AlertManager(rs)
    for key, value in saved.items():
        if value is not None:
            restored.load(key, value)
    assert restored.alerts.keys() == h.am.alerts.keys()
    assert [s.matchers for s in restored.silences.values()] == [['model="zzz"']]
    h.tick(70)
    restored.tick(70)
    assert (
        [p.title for p in restored.due(70)]
        == [p.title for p in h.am.due(70)]
        == ["[FIRING:1] SlowTTFT (service=chat)"]
    )


def test_delivery_outcomes_retry_config_and_give_up(tmp_path: Path) -> None:
    rules = RULES.replace("for: 60s", "for: 0s")
    am = AlertManager(ruleset(tmp_path, rules), AlertingSettings(max_attempts=3))
    ev = RuleEvaluator(ruleset(tmp_path, rules))
    for s in ev.samples("metrics", window(0, ttft=3.0)):
        am.observe(s, 0)
    am.tick(10)
    (p,) = am.due(10)
    am.delivered(p.id, "retry", "HTTP 500", 10)
    assert am.due(10) == [] and p.next_at > 10 and p.attempts == 1
    first = p.next_at
    am.delivered(p.id, "retry", "HTTP 502", first)
    assert p.next_at - first > first - 10  # exponential back-off
    am.delivered(p.id, "retry", "timeout", p.next_at)
    assert am.outbox == {} and am.counters["notifications_gave_up"] == 1
    assert 0.5 <= backoff_s(1, 1.0, key="x") <= 1.5 and backoff_s(30, 1.0, key="x") <= 450


def test_config_error_is_not_retried(tmp_path: Path) -> None:
    rules = RULES.replace("for: 60s", "for: 0s")
    rs = ruleset(tmp_path, rules)
    am = AlertManager(rs)
    for s in RuleEvaluator(rs).samples("metrics", window(0, ttft=3.0)):
        am.observe(s, 0)
    am.tick(10)
    (p,) = am.due(10)
    am.delivered(p.id, "config", "HTTP 404", 10)
    assert am.outbox == {} and am.counters["notifications_config_error"] == 1


def test_sample_wire_format_round_trip() -> None:
    s = Sample("R", {"alertname": "R", "model": "m"}, "k", 1.5, True, 7, {"trace_id": "t"})
    assert (
        Sample.from_dict(s.to_dict()) == s
        and s.fingerprint == Sample.from_dict(s.to_dict()).fingerprint
    )


def test_routing_tree_paths_and_continue(tmp_path: Path) -> None:
    routing = """
route:
  receiver: team
  routes:
    - matchers: ['severity="critical"']
      receiver: oncall
      continue: true
    - matchers: ['model=~"q.*"']
      receiver: owners
      routes:
        - matchers: ['service="chat"']
          receiver: chat
    - receiver: never        # a sibling after a match without continue
receivers:
  - {name: team, console: true}
  - {name: oncall, console: true}
  - {name: owners, console: true}
  - {name: chat, console: true}
  - {name: never, console: true}
"""
    route = ruleset(tmp_path, routing=routing).config.route

    def where(**labels: str) -> list[tuple[str, str]]:
        return [(p, r.receiver) for p, r in route.match(labels)]

    assert where(severity="critical", model="qwen", service="chat") == [
        ("0.0", "oncall"),
        ("0.1.0", "chat"),
    ]
    assert where(model="qwen", service="rag") == [("0.1", "owners")]
    assert where(model="gpt") == [("0.2", "never")]
    assert route.at("0.1.0").receiver == "chat" and route.at("0") is route
