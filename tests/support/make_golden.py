"""Regenerate the golden files under tests/testdata from real instrumentation.

    python -m tests.support.make_golden          # all cases
    python -m tests.support.make_golden --check  # only recompute expected.jsonl from input.pb

Each case directory holds ``input.pb`` (an ExportTraceServiceRequest the OpenTelemetry SDK's
OTLP encoder produced from a real instrumentation calling the fake OpenAI server),
``truth.json`` (what the fake server did) and ``expected.jsonl`` (normalized records).
Review the diff of expected.jsonl before committing a regenerated case.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.ingest import ingest_message

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "tests" / "testdata"
CASES = {"openai_v2_stream": "openai-v2", "openinference_stream": "openinference"}
CONTENT_ENV = {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
               "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY"}


def expected_lines(input_pb: bytes) -> str:
    result = ingest_message(input_pb)
    assert not result.dead_letters, result.dead_letters
    return "".join(json.dumps(s.to_dict(), sort_keys=True) + "\n" for s in result.spans)


def record(case: str, instrumentation: str) -> None:
    d = TESTDATA / case
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "tests/support/instrumented_app.py"),
                    "--instrumentation", instrumentation, "--out", str(d / "input.pb"),
                    "--truth", str(d / "truth.json")], check=True,
                   env={**os.environ, **CONTENT_ENV})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="keep input.pb, recompute expected")
    args = ap.parse_args()
    for case, instrumentation in CASES.items():
        if not args.check:
            record(case, instrumentation)
        d = TESTDATA / case
        (d / "expected.jsonl").write_text(expected_lines((d / "input.pb").read_bytes()))
        print(f"{case}: {d / 'expected.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
