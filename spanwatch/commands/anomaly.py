"""``spanwatch anomaly score``: backtest a detector on a ``timestamp,value`` CSV.

Rows are read, scored and written one at a time (no look-ahead), with exactly the code the
worker uses (:class:`~pipeline.anomaly.base.AnomalyScorer`), so a tuned configuration behaves
the same live. Timestamps are Unix seconds or ISO 8601; an empty value is missing (score 0,
not learned). Real exports repeat a timestamp or step back (an hour at a daylight-saving
change, a merged file): such rows are kept and scored in file order like any other, and
counted in the summary on stderr.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO, cast

import yaml

from spanwatch.pipeline.anomaly.base import AnomalyScorer, registered
from spanwatch.pipeline.anomaly.defaults import DEFAULT_DETECTOR, DEFAULT_DETECTORS
from spanwatch.pipeline.common.errors import ConfigError, SpanwatchError
from spanwatch.runtime.progress import lines_read


def parse_time(raw: str, line: int) -> float:
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise SpanwatchError(
            f"line {line}: timestamp {raw[:40]!r} is neither Unix seconds nor ISO 8601"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def parse_value(raw: str, line: int) -> float | None:
    if raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise SpanwatchError(f"line {line}: value {raw[:40]!r} is not a number") from None


def rows(stream: TextIO) -> Iterator[tuple[int, str, float, float | None]]:
    reader = csv.reader(lines_read(stream, "scoring"))  # a bar on a terminal
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["timestamp", "value"]:
        raise SpanwatchError("the CSV must start with the header 'timestamp,value'")
    for row in reader:
        n = reader.line_num
        if not row:
            continue
        if len(row) < 2:
            raise SpanwatchError(f"line {n}: expected 'timestamp,value'")
        yield n, row[0], parse_time(row[0], n), parse_value(row[1], n)


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = dict(DEFAULT_DETECTORS[args.signal]) if args.signal else {}
    if args.detector:
        if spec.get("detector") != args.detector:
            spec = {k: v for k, v in spec.items() if k in ("log", "side")}
        spec["detector"] = args.detector
    spec.setdefault("detector", DEFAULT_DETECTOR["detector"])
    for item in args.param or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE")
        try:
            spec[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"--param {item!r}: the value is not YAML: {why}") from None
    if args.threshold is not None:
        spec["threshold"] = args.threshold
    if args.adapt_after is not None:
        spec["adapt_after"] = args.adapt_after
    return spec


@dataclass
class BacktestSummary:
    rows: int = 0
    repeated: int = 0  # same timestamp as the row before
    backwards: int = 0  # earlier than the row before
    missing: int = 0  # empty value: scored 0, not learned
    anomalous: int = 0

    def __str__(self) -> str:
        return (
            f"{self.rows} rows scored, {self.anomalous} anomalous, {self.missing} missing "
            f"values, {self.repeated} repeated and {self.backwards} out-of-order "
            "timestamps (kept, scored in file order)"
        )


def backtest(
    src: TextIO, out: TextIO, spec: dict[str, Any], extra: bool = False
) -> BacktestSummary:
    scorer = AnomalyScorer.from_spec(spec)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["timestamp", "value", "anomaly_score"]
        + (["expected_low", "expected_high", "anomalous", "model"] if extra else [])
    )
    summary = BacktestSummary()
    last = None
    for _, raw_t, t, value in rows(src):
        if last is not None and t <= last:
            if t == last:
                summary.repeated += 1
            else:
                summary.backwards += 1
        last = t
        p = scorer.process(value, t)
        row: list[Any] = [raw_t, "" if value is None else repr(value), f"{p.score:.6f}"]
        if extra:
            lo, hi = p.expected or ("", "")
            row += [
                lo,
                hi,
                int(p.anomalous),
                getattr(scorer.detector, "model", scorer.detector.name),
            ]
        writer.writerow(row)
        summary.rows += 1
        summary.missing += value is None
        summary.anomalous += p.anomalous
    return summary


def cmd_score(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    src: TextIO = sys.stdin if args.input in (None, "-") else _open(args.input, "r")
    out: TextIO = sys.stdout if args.output in (None, "-") else _open(args.output, "w")
    try:
        summary = backtest(src, out, spec, extra=args.extra)
    finally:
        if out is not sys.stdout:
            out.close()
        if src is not sys.stdin:
            src.close()
    print(f"anomaly score: {summary} with {spec}", file=sys.stderr)
    return 0


def _open(path: str, mode: str) -> TextIO:
    try:
        return cast(TextIO, open(path, mode, encoding="utf-8", newline=""))
    except OSError as exc:
        raise SpanwatchError(f"{path}: {exc.strerror}") from None


def add_parser(sub: Any) -> None:
    p = sub.add_parser("anomaly", help="anomaly detectors: backtest on CSV")
    verbs = p.add_subparsers(dest="verb", required=True)
    s = verbs.add_parser("score", help="timestamp,value CSV in -> timestamp,value,anomaly_score")
    s.add_argument("--input", "-i", help="CSV file ('-' or none: stdin)")
    s.add_argument("--output", "-o", help="CSV file ('-' or none: stdout)")
    s.add_argument(
        "--signal",
        choices=sorted(DEFAULT_DETECTORS),
        help="start from this signal's default detector (as the worker does)",
    )
    s.add_argument(
        "--detector",
        choices=sorted(registered()),
        help=f"detector (default {DEFAULT_DETECTOR['detector']}: seasonal models "
        "chosen per series, docs/ANOMALY.md)",
    )
    s.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="detector parameter, e.g. window=360 z_alarm=4.5 log=true",
    )
    s.add_argument("--threshold", type=float, help="score that counts as anomalous (0.9)")
    s.add_argument("--adapt-after", type=int, help="anomalous points in a row that are learned")
    s.add_argument(
        "--extra",
        action="store_true",
        help="also write expected_low, expected_high, anomalous, model",
    )
    s.set_defaults(func=cmd_score)
