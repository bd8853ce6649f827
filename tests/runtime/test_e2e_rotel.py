"""End to end with real processes: SDK app -> Rotel (OTLP in, Kafka out) -> Tansu -> worker.

The app is instrumented with a real OpenTelemetry instrumentation package and calls a local
fake OpenAI server; the normalized records read back from ``spanwatch.spans`` are checked
against what that server did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spanwatch.devtools.broker import EmbeddedBroker
from tests.ingest.test_golden import check_against_truth
from tests.support.cluster import RotelProc, WorkerProc, consume_until, span_records
from tests.support.make_golden import CONTENT_ENV
from tests.support.paths import ROOT

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


@pytest.mark.parametrize(
    ("fmt", "instrumentation", "transport"),
    [
        ("protobuf", "openai-v2", "grpc"),
        ("json", "openinference", "http"),
    ],
)
def test_sdk_to_rotel_to_kafka_to_worker(
    broker: EmbeddedBroker, tmp_path: Path, fmt: str, instrumentation: str, transport: str
) -> None:
    rotel = RotelProc(broker.bootstrap, "otlp_spans", tmp_path, fmt=fmt).start()
    worker = WorkerProc(broker.bootstrap, tmp_path).start()
    truth_path = tmp_path / "truth.json"
    endpoint = (
        ["--otlp-grpc", f"127.0.0.1:{rotel.grpc_port}"]
        if transport == "grpc"
        else ["--otlp-http", f"http://127.0.0.1:{rotel.http_port}"]
    )
    try:
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "tests/support/instrumented_app.py"),
                "--instrumentation",
                instrumentation,
                "--truth",
                str(truth_path),
                *endpoint,
            ],
            check=True,
            timeout=120,
            env={**os.environ, **CONTENT_ENV},
        )
        truth = json.loads(truth_path.read_text())
        got = consume_until(
            broker.bootstrap,
            ["spanwatch.spans", "spanwatch.deadletter"],
            lambda ms: len(span_records(ms)) >= len(truth["spans"]),
            timeout=90,
        )
    finally:
        worker.stop()
        rotel.stop()
    assert not [m for m in got if m.topic() == "spanwatch.deadletter"]
    records = span_records(got)
    check_against_truth(records, truth)
