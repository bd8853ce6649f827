"""``spanwatch rules check|test`` as a user runs them, and a worker refusing a broken rule
set."""

from __future__ import annotations

import subprocess
from pathlib import Path

from spanwatch.rules import DEFAULT_RULES_DIR
from tests.support.cli import CLI
from tests.support.paths import TESTDATA

CASES = TESTDATA / "rules"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_check_good_and_bad() -> None:
    ok = run("rules", "check", str(DEFAULT_RULES_DIR))
    assert ok.returncode == 0 and ok.stdout.startswith("OK: 22 rules")
    bad = run("rules", "check", str(CASES / "many.bad.yaml"), str(CASES / "routing.bad.yaml"))
    assert bad.returncode == 1
    lines = bad.stderr.splitlines()
    assert lines[-1] == "21 problem(s)"  # 15 + 6: every problem of both files
    assert any(":5:17: unknown signal 'ttft_p59'" in line for line in lines)
    assert any("routing.bad.yaml:2:13: unknown receiver 'slack'" in line for line in lines)


def test_check_warns_about_unset_receiver_secrets(tmp_path: Path) -> None:
    (tmp_path / "am.yaml").write_text(
        "route: {receiver: s}\nreceivers:\n  - {name: s, urls: ['${NO_SUCH_VAR_X}']}\n"
    )
    (tmp_path / "r.yaml").write_text((DEFAULT_RULES_DIR / "tokens.yaml").read_text())
    res = run("rules", "check", str(tmp_path))
    assert (
        res.returncode == 0
        and "warning: receiver 's': environment variable NO_SUCH_VAR_X" in res.stderr
    )


def test_rule_unit_tests_pass_and_fail(tmp_path: Path) -> None:
    ok = run("rules", "test", str(DEFAULT_RULES_DIR / "tests" / "shipped.yaml"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("ok   ") == 14 and "SUCCESS" in ok.stdout
    wrong = (
        (DEFAULT_RULES_DIR / "tests" / "shipped.yaml")
        .read_text()
        .replace("(threshold 2.0 s)", "(threshold 3.0 s)")
        .replace("      - eval_time: 3m\n", "      - eval_time: 2m\n", 1)
    )
    (tmp_path / "t.yaml").write_text(wrong.replace("../", f"{DEFAULT_RULES_DIR}/"))
    bad = run("rules", "test", str(tmp_path / "t.yaml"))
    assert bad.returncode == 1
    assert (
        "annotation 'summary' is 'TTFT p95 of qwen-max on chat is 4.1 s (threshold 2.0 s)'"
        ", expected 'TTFT p95 of qwen-max on chat is 4.1 s (threshold 3.0 s)'" in bad.stdout
    )
    assert "FAILED (1 failing)" in bad.stdout


def test_worker_refuses_an_invalid_rule_set(tmp_path: Path) -> None:
    cfg = tmp_path / "sw.yaml"
    cfg.write_text(f'alerting: {{rules: ["{CASES / "many.bad.yaml"}"]}}\n')
    res = run("--config", str(cfg), "worker", "--broker", "127.0.0.1:1", "--profile", "tansu")
    assert res.returncode == 2
    assert "15 problem(s) in alert rules" in res.stderr and "ttft_p59" in res.stderr
    (tmp_path / "am.yaml").write_text(
        "route: {receiver: s}\nreceivers:\n  - {name: s, urls: ['${NO_SUCH_VAR_Y}']}\n"
    )
    cfg.write_text(
        f'alerting: {{rules: ["{tmp_path / "am.yaml"}", "{DEFAULT_RULES_DIR / "tokens.yaml"}"]}}\n'
    )
    res = run("--config", str(cfg), "worker", "--broker", "127.0.0.1:1", "--profile", "tansu")
    assert res.returncode == 2 and "NO_SUCH_VAR_Y is not set" in res.stderr


def test_a_rule_test_sets_each_signal_in_its_own_kind_of_window(tmp_path: Path) -> None:
    """``requests`` is the field ``count`` of a golden-signal window but ``requests`` of a
    token window: an input series with an entity sets the token window's field."""
    (tmp_path / "r.yaml").write_text(
        "groups:\n  - name: g\n    rules:\n"
        "      - {alert: ManyUserCalls, signal: requests, entity: user, window: 1m,"
        " threshold: 100}\n"
        "      - {alert: ManyCalls, signal: requests, window: 1m, threshold: 100}\n"
    )
    (tmp_path / "t.yaml").write_text(
        "rule_files: [r.yaml]\ntests:\n  - name: t\n    input_series:\n"
        "      - {signal: requests, entity: {kind: user, id: u1}, values: '500 500'}\n"
        "      - {signal: requests, labels: {service: s}, values: '500 500'}\n"
        "    alert_rule_test:\n"
        "      - {eval_time: 1m, alertname: ManyUserCalls,"
        " exp_alerts: [{exp_labels: {entity_kind: user, entity: u1}}]}\n"
        "      - {eval_time: 1m, alertname: ManyCalls,"
        " exp_alerts: [{exp_labels: {service: s}}]}\n"
    )
    res = run("rules", "test", str(tmp_path / "t.yaml"))
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr
