"""Regenerate the golden files under tests/testdata from real instrumentation.

    python -m tests.support.make_golden          # all cases
    python -m tests.support.make_golden --check  # only recompute expected.jsonl from input.pb
    python -m tests.support.make_golden --dependencies VENV_PYTHON  # the dependency cases

Each case directory holds ``input.pb`` (an ExportTraceServiceRequest the OpenTelemetry SDK's
OTLP encoder produced from a real instrumentation calling the fake OpenAI server),
``truth.json`` (what the fake server did) and ``expected.jsonl`` (normalized records).
``windows_case`` holds a fixed capture of generated traffic (``msg-<partition>-<n>.pb``) and
the closed golden-signal and token windows the pipeline must produce from it.
Review the diff of expected.jsonl before committing a regenerated case.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from spanwatch.pipeline.ingest.message import ingest_message

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "tests" / "testdata"
CASES = {
    "openai_v2_stream": "openai-v2",
    "openinference_stream": "openinference",
    "openllmetry_stream": "openllmetry",
    "langchain_openai_v2": "langchain+openai-v2",
}
# dependency calls (HTTP, SQLite, Redis) through their own instrumentation, in a separate
# virtual environment with tests/support/dependency_app.py's REQUIREMENTS installed
DEPENDENCY_CASES = {"dependencies_old": "old", "dependencies_new": "new"}
CONTENT_ENV = {
    "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
}


def expected_lines(input_pb: bytes) -> str:
    result = ingest_message(input_pb)
    assert not result.dead_letters, result.dead_letters
    return "".join(json.dumps(s.to_dict(), sort_keys=True) + "\n" for s in result.spans)


def record(case: str, instrumentation: str) -> None:
    d = TESTDATA / case
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests/support/instrumented_app.py"),
            "--instrumentation",
            instrumentation,
            "--out",
            str(d / "input.pb"),
            "--truth",
            str(d / "truth.json"),
        ],
        check=True,
        env={**os.environ, **CONTENT_ENV},
    )


WINDOWS_CASE = TESTDATA / "windows_case"
WINDOWS_CONFIG = {"windows": ("10s", "1m/30s"), "allowed_lateness": "2s"}


def windows_expected(inputs: list[tuple[int, bytes]]) -> str:
    """Closed golden-signal and token windows of (partition, message) inputs, as JSON lines."""
    from spanwatch.pipeline.config import MetricsSettings, TokensSettings
    from spanwatch.pipeline.windows.golden import SeriesKeyer
    from spanwatch.pipeline.windows.preaggregate import PreAggregator
    from spanwatch.pipeline.windows.state import close_offline

    ms = MetricsSettings(**WINDOWS_CONFIG)  # type: ignore[arg-type]
    keyer = SeriesKeyer(ms.dimensions)
    pre = PreAggregator(ms.window_settings(), keyer, lambda: 0, TokensSettings().price_table())
    offsets: dict[int, int] = {}
    partials = []
    for part, value in inputs:
        off = offsets.get(part, 0)
        partials += pre.add_message(part, off, ingest_message(value).spans)
        offsets[part] = off + 1
    lines = []
    for c in close_offline(partials):
        key = json.loads(c.series)
        labels = {"kind": key[1], "id": key[2]} if key[0] == "@tokens" else keyer.labels(key)
        lines.append(json.dumps(c.to_record(labels), sort_keys=True))
    return "".join(line + "\n" for line in sorted(lines))


def windows_inputs() -> list[tuple[int, bytes]]:
    return [
        (int(p.name.split("-")[1]), p.read_bytes()) for p in sorted(WINDOWS_CASE.glob("msg-*.pb"))
    ]


def record_windows_case() -> None:
    """A fixed capture: the demo's generator with a fixed seed and fixed event times."""
    from spanwatch.devtools.traffic import TrafficGenerator

    WINDOWS_CASE.mkdir(parents=True, exist_ok=True)
    gen = TrafficGenerator(seed=101, runaway_every=4)
    base = 1_800_000_000 * 10**9
    for i in range(8):
        batch = next(gen.batches(60, base + i * 7 * 10**9, spread_ns=5 * 10**9))
        path = WINDOWS_CASE / f"msg-{i % 2}-{i:02d}.pb"
        path.write_bytes(batch.traces_data().SerializeToString())


def record_dependencies(python: str) -> None:
    for case, semconv in DEPENDENCY_CASES.items():
        d = TESTDATA / case
        d.mkdir(parents=True, exist_ok=True)
        app = str(ROOT / "tests/support/dependency_app.py")
        out, truth = str(d / "input.pb"), str(d / "truth.json")
        cmd = [python, app, "--semconv", semconv, "--out", out, "--truth", truth]
        subprocess.run(cmd, check=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="keep input.pb, recompute expected")
    ap.add_argument(
        "--dependencies",
        metavar="PYTHON",
        help="record the dependency cases with this interpreter (its environment has "
        "tests/support/dependency_app.py's REQUIREMENTS)",
    )
    args = ap.parse_args()
    if args.dependencies:
        record_dependencies(args.dependencies)
    for case in DEPENDENCY_CASES:
        d = TESTDATA / case
        (d / "expected.jsonl").write_text(expected_lines((d / "input.pb").read_bytes()))
    if args.dependencies:
        return 0
    for case, instrumentation in CASES.items():
        if not args.check:
            record(case, instrumentation)
        d = TESTDATA / case
        (d / "expected.jsonl").write_text(expected_lines((d / "input.pb").read_bytes()))
        print(f"{case}: {d / 'expected.jsonl'}")
    if not args.check:
        record_windows_case()
    (WINDOWS_CASE / "expected.jsonl").write_text(windows_expected(windows_inputs()))
    print(f"windows_case: {WINDOWS_CASE / 'expected.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
