"""``spanwatch safety scan``: the worker's checks on files, JSON lines out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spanwatch.pipeline.common.errors import ConfigError
from spanwatch.pipeline.config import load_settings


def run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spanwatch.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_scan_text_and_json_lines(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"text": "key AKIA2OGYBAH6STMMNXNN", "role": "output", "trace_id": "t1"}\n'
        "call 13800138000 please\n\nnothing to see\n",
        encoding="utf-8",
    )
    res = run(["safety", "scan", str(src)])
    assert res.returncode == 0, res.stderr
    recs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["category"], r["role"], r["location"], r["trace_id"]) for r in recs] == [
        ("aws_access_key_id", "output", "line:1", "t1"),
        ("cn_mobile", "input", "line:2", ""),
    ]
    assert "AKIA2OGYBAH6STMMNXNN" not in res.stdout and "13800138000" not in res.stdout
    assert "3 texts" in res.stderr


def test_fail_on_and_extra_lexicon(tmp_path: Path) -> None:
    lex = tmp_path / "words.txt"
    lex.write_text("project falcon\n", encoding="utf-8")
    res = run(
        [
            "safety",
            "scan",
            "-",
            "--only",
            "lexicon",
            "--lexicon",
            str(lex),
            "--category",
            "codename",
            "--fail-on",
            "medium",
        ],
        "about Project Falcon\n",
    )
    assert res.returncode == 1
    assert json.loads(res.stdout)["category"] == "codename"
    assert run(["safety", "scan", "-", "--fail-on", "high"], "hello\n").returncode == 0
    bad = run(["safety", "scan", str(tmp_path / "missing.txt")])
    assert bad.returncode == 2 and "No such file" in bad.stderr


def test_judge_config_keeps_the_key_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY", "sk-live-judge-secret")
    s = load_settings(
        None, safety__judge={"url": "http://j/v1", "model": "m", "api_key": "${JUDGE_KEY}"}
    )
    assert "sk-live" not in repr(s) and "JUDGE_KEY" not in repr(s.safety.judge.judge_settings())
    assert s.safety.judge.judge_settings().api_key == "sk-live-judge-secret"
    monkeypatch.delenv("JUDGE_KEY")
    with pytest.raises(ConfigError, match="JUDGE_KEY is not set"):
        s.safety.judge.judge_settings()


def test_scan_echoes_the_input_id(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"id": "case-17", "text": "call 13800138000"}\n'
        '{"id": 42, "text": "nothing here"}\n{"text": "call 13900139000"}\n'
    )
    res = run(["safety", "scan", str(src)])
    recs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r.get("id"), r["line"], r["location"]) for r in recs] == [
        ("case-17", 1, "id:case-17"),
        (None, 3, "line:3"),
    ]


def test_an_unknown_scanner_in_only_is_an_error_that_lists_the_valid_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``--only secret`` (for ``secrets``) once scanned nothing and said "findings: none"."""
    import subprocess
    import sys

    f = tmp_path / "keys.txt"
    f.write_text("ghp_1234567890abcdefghijklmnopqrstuvwxyzAB\n")
    out = subprocess.run(
        [sys.executable, "-m", "spanwatch.cli", "safety", "scan", str(f), "--only", "secret"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "unknown scanner secret" in out.stderr
    assert "injection, lexicon, pii, secrets" in out.stderr
