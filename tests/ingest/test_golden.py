"""Golden files from real instrumentation (see tests/support/make_golden.py to regenerate).

Each case was produced by the OpenTelemetry SDK with a real instrumentation package calling a
local fake OpenAI server that streams tokens; ``truth.json`` records what that server did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from spanwatch.commands.normalize import mapping_markdown
from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.ingest.spans import LlmSpan
from spanwatch.pipeline.tokens.burn import counted_calls
from tests.support.make_golden import CASES, CONTENT_ENV, expected_lines
from tests.support.otlp_json import otlp_json
from tests.support.paths import ROOT

TESTDATA = ROOT / "tests" / "testdata"
TIMESTAMPS = ("start_ns", "end_ns", "duration_s", "ttft_s", "tpot_s")


def _strip_times(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in TIMESTAMPS}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_expected_records(case: str) -> None:
    d = TESTDATA / case
    got = expected_lines((d / "input.pb").read_bytes())
    assert got == (d / "expected.jsonl").read_text()


def check_against_truth(records: list[LlmSpan], truth: dict[str, Any]) -> None:
    """Tokens, model, ids and TTFT in the records match what the fake server did."""
    mine = [r for r in records if r.service == truth["service"]]
    chats = sorted((r for r in mine if r.duplicate_of is None), key=lambda r: r.start_ns)
    assert len(chats) == len(truth["requests"]) == 2
    repeats = [r for r in mine if r.duplicate_of is not None]
    if truth["instrumentation"] == "langchain+openai-v2":
        # the framework's span of each call repeats the client's: marked, counted once
        assert sorted(r.duplicate_of for r in repeats) == sorted(r.span_id for r in chats)
        assert all("langchain" in r.instrumentation for r in repeats)
        assert counted_calls(records) == [
            r for r in records if r.duplicate_of is None and r.input_tokens is not None
        ]
    else:
        assert repeats == []
    span_ids = {(s["trace_id"], s["span_id"]) for s in truth["spans"]}
    for rec, req in zip(chats, truth["requests"], strict=True):
        assert (rec.trace_id, rec.span_id) in span_ids
        assert rec.input_tokens == req["prompt_tokens"]
        assert rec.output_tokens == req["completion_tokens"]
        assert rec.response_model == req["served_model"]
        assert rec.request_model in (req["model"], None)
        assert rec.layer == "app" and rec.operation == "chat"
        assert rec.duration_s is not None and rec.duration_s >= req["first_token_delay"]
        if rec.ttft_s is not None:  # only streamed calls have a first token
            assert req["stream"]
            assert req["first_token_delay"] <= rec.ttft_s < req["first_token_delay"] + 0.5
            assert rec.tpot_s is not None and 0 < rec.tpot_s < 0.1
        else:
            assert rec.tpot_s is None
    if truth["instrumentation"] in ("openinference", "openllmetry"):
        # OpenInference marks the first streamed token with an event, OpenLLMetry every
        # streamed chunk: TTFT is derived from the first one
        assert chats[0].ttft_s is not None and chats[0].streaming is True
    roles = {c.role for rec in chats for c in rec.content}
    assert {"input", "output"} <= roles  # content capture was on; references only


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_matches_what_the_server_did(case: str) -> None:
    d = TESTDATA / case
    truth = json.loads((d / "truth.json").read_text())
    check_against_truth(ingest_message((d / "input.pb").read_bytes()).spans, truth)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_json_encoding_gives_the_same_records(case: str) -> None:
    raw = (TESTDATA / case / "input.pb").read_bytes()
    data = TracesData()
    data.ParseFromString(raw)
    assert ingest_message(otlp_json(data)).spans == ingest_message(raw).spans


@pytest.mark.parametrize("instrumentation", sorted(set(CASES.values())))
def test_live_instrumentation_run(tmp_path: Path, instrumentation: str) -> None:
    """Run the real instrumentation now (not a recording) and check it the same way."""
    out, truth = tmp_path / "spans.pb", tmp_path / "truth.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests/support/instrumented_app.py"),
            "--instrumentation",
            instrumentation,
            "--out",
            str(out),
            "--truth",
            str(truth),
        ],
        check=True,
        env={**os.environ, **CONTENT_ENV},
        timeout=120,
    )
    check_against_truth(ingest_message(out.read_bytes()).spans, json.loads(truth.read_text()))


def test_normalize_cli_prints_the_golden_records() -> None:
    d = TESTDATA / "openinference_stream"
    out = subprocess.run(
        [sys.executable, "-m", "spanwatch.cli", "normalize", str(d / "input.pb")],
        check=True,
        capture_output=True,
        text=True,
    )
    got = [json.loads(line) for line in out.stdout.splitlines()]
    want = [json.loads(line) for line in (d / "expected.jsonl").read_text().splitlines()]
    assert [_strip_times(r) for r in got] == [_strip_times(r) for r in want]


def test_normalize_cli_reports_undecodable_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceSpans": [')
    out = subprocess.run(
        [sys.executable, "-m", "spanwatch.cli", "normalize", str(bad)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "bad_json" in out.stderr


def test_mapping_doc_is_generated_from_the_table() -> None:
    doc = (ROOT / "docs" / "ATTRIBUTE-MAPPING.md").read_text()
    assert doc == mapping_markdown(), "regenerate: spanwatch normalize --mapping > docs/..."
