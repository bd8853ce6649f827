"""``spanwatch safety scan [FILE|-]``: the worker's content checks on files, for tuning.

Input is JSON lines (objects with ``text`` or ``content``, and optionally ``id``, ``role``,
``trace_id``, ``span_id``) or plain text, one text per line. Output is one JSON line per
finding, exactly the ``spanwatch.findings`` record the worker would write, plus the input's
``id`` (when it has one) and ``line``, so findings join back to the input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any, TextIO

import orjson

from spanwatch.pipeline.common.errors import SpanwatchError
from spanwatch.pipeline.safety.finding import Severity
from spanwatch.pipeline.safety.scan import ContentItem, SafetyEngine


def items(stream: TextIO, default_role: str) -> Iterator[tuple[ContentItem, int, Any]]:
    """``(item, line number, the input's id or None)`` for every text of the input."""
    for n, line in enumerate(stream, 1):
        raw = line.rstrip("\n")
        if not raw.strip():
            continue
        obj: Any = None
        if raw.lstrip().startswith("{"):
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
        if isinstance(obj, dict):
            text = obj.get("text", obj.get("content"))
            if not isinstance(text, str):
                raise SpanwatchError(f"line {n}: JSON object without a 'text' string")
            ident = obj.get("id")
            where = f"id:{ident}" if ident is not None else f"line:{n}"
            yield (
                ContentItem(
                    text,
                    str(obj.get("role", default_role)),
                    where,
                    str(obj.get("trace_id", "")),
                    str(obj.get("span_id", "")),
                    time_ns=1,
                ),
                n,
                ident,
            )
        else:
            yield ContentItem(raw, default_role, f"line:{n}", time_ns=1), n, None


def scan_stream(engine: SafetyEngine, stream: TextIO, out: TextIO, role: str) -> Counter[str]:
    by_severity: Counter[str] = Counter()
    for item, line, ident in items(stream, role):
        for rec in engine.scan_item(item):
            rec.pop("time_ns", None)
            if ident is not None:
                rec["id"] = ident
            rec["line"] = line
            out.write(orjson.dumps(rec).decode() + "\n")
            by_severity[rec["severity"]] += 1
    return by_severity


def cmd_scan(args: argparse.Namespace, settings: Any) -> int:
    specs = list(settings.safety.scanners)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        known = sorted({str(s.get("type")) for s in specs})
        unknown = sorted(wanted - set(known))
        if unknown or not wanted:
            raise SpanwatchError(
                f"--only: unknown scanner {', '.join(unknown) or '(none given)'}; "
                f"the configured ones are {', '.join(known)}"
            )
        specs = [s for s in specs if s.get("type") in wanted]
    if args.lexicon:
        specs.append(
            {
                "type": "lexicon",
                "builtin": False,
                "lexicons": [{"path": p, "category": args.category} for p in args.lexicon],
            }
        )
    engine = SafetyEngine.from_config(specs, max_chars=settings.safety.max_chars)
    if args.file in (None, "-"):
        found = scan_stream(engine, sys.stdin, sys.stdout, args.role)
    else:
        try:
            with open(args.file, encoding="utf-8") as fh:
                found = scan_stream(engine, fh, sys.stdout, args.role)
        except OSError as exc:
            raise SpanwatchError(f"{args.file}: {exc.strerror}") from None
    summary = ", ".join(f"{n} {sev}" for sev, n in sorted(found.items())) or "none"
    print(
        f"safety scan: {engine.stats.texts} texts, {engine.stats.chars} chars; findings: {summary}",
        file=sys.stderr,
    )
    if args.fail_on:
        limit = Severity.parse(args.fail_on)
        if any(Severity.parse(s) >= limit for s in found):
            return 1
    return 0


def add_parser(sub: Any, settings_of: Any) -> None:
    p = sub.add_parser("safety", help="content-safety checks (offline)")
    verbs = p.add_subparsers(dest="verb", required=True)
    s = verbs.add_parser("scan", help="scan text or JSON lines, print findings as JSON lines")
    s.add_argument("file", nargs="?", help="input file; '-' or none reads stdin")
    s.add_argument("--role", default="input", help="role of plain-text lines")
    s.add_argument("--only", help="comma-separated scanner types to run (pii,secrets,...)")
    s.add_argument("--lexicon", action="append", help="extra lexicon file (repeatable)")
    s.add_argument("--category", default="custom", help="category of --lexicon terms")
    s.add_argument(
        "--fail-on",
        choices=["low", "medium", "high", "critical"],
        help="exit 1 when a finding has this severity or higher",
    )
    s.set_defaults(func=lambda a: cmd_scan(a, settings_of(a)))
