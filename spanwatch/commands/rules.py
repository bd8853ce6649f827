"""``spanwatch rules check|test`` and ``spanwatch silence add|list|expire``.

``rules check PATH...`` prints every problem as ``file:line:column: message`` and exits 1 (for
CI); unset ``${VAR}`` in receiver URLs are warnings here (the worker refuses them).
``rules test FILE...`` runs rule unit tests (``pipeline/alerting/ruletest.py``).
Silences are commands to the alert manager through ``spanwatch.alerting``; the current set is
read back from ``spanwatch.silences``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from spanwatch.pipeline.alerting.loader import RuleError, load_rules
from spanwatch.pipeline.alerting.routing import unusable_receivers
from spanwatch.pipeline.alerting.ruletest import run_file
from spanwatch.pipeline.alerting.silences import Silence
from spanwatch.pipeline.common.durations import parse_duration_s
from spanwatch.pipeline.common.errors import SpanwatchError
from spanwatch.pipeline.config import Settings


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    try:
        rs = load_rules(args.paths, settings.metrics.dimensions)
    except RuleError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    for problem in unusable_receivers(rs.config):
        print(f"warning: {problem}", file=sys.stderr)
    kinds: dict[str, int] = {}
    for rule in rs.rules:
        kinds[rule.kind] = kinds.get(rule.kind, 0) + 1
    print(
        f"OK: {len(rs.rules)} rules ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})"
        f" in {len(rs.files)} files; receivers: {', '.join(sorted(rs.config.receivers))}"
    )
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    failed = 0
    for f in args.files:
        try:
            outcomes = run_file(Path(f))
        except RuleError as exc:
            print(f"{f}: rule files are invalid:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
            failed += 1
            continue
        for o in outcomes:
            if o.failures:
                failed += 1
                print(f"FAIL {f}: {o.name}")
                for line in o.failures:
                    print(f"  {line}")
            else:
                print(f"ok   {f}: {o.name}")
    print("FAILED" if failed else "SUCCESS", f"({failed} failing)" if failed else "")
    return 1 if failed else 0


def _producer(settings: Settings) -> Any:
    from confluent_kafka import Producer

    from spanwatch.runtime.kafka import settings_config

    return Producer(settings_config(settings, "producer"))


def _send(settings: Settings, msg: dict[str, Any]) -> None:
    from spanwatch.runtime.kafka import require_topic

    require_topic(settings, settings.topics.alerting, partitions=1)
    p = _producer(settings)
    p.produce(settings.topics.alerting, key=b"control", value=json.dumps(msg).encode(), partition=0)
    if p.flush(15) != 0:
        raise SpanwatchError(f"could not reach {settings.kafka.bootstrap_servers}")


def read_silences(settings: Settings, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """The latest value per silence id on ``spanwatch.silences`` (a tombstone deletes)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from spanwatch.runtime.kafka import require_topic, settings_config

    require_topic(settings, settings.topics.silences, partitions=1)
    c = Consumer(
        {
            **settings_config(settings, "consumer"),
            "group.id": f"spanwatch-cli-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    out: dict[str, dict[str, Any]] = {}
    try:
        tp = TopicPartition(settings.topics.silences, 0)
        _, high = c.get_watermark_offsets(tp, timeout=timeout)
        if high <= 0:
            return out
        c.assign([TopicPartition(settings.topics.silences, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error() is not None:
                continue
            key, value, offset = (m.key() or b"").decode(), m.value(), m.offset()
            if value:
                out[key] = json.loads(value)
            else:
                out.pop(key, None)
            if offset is not None and offset >= high - 1:
                break
    finally:
        c.close()
    return out


MAX_PENDING_SCAN = 200_000  # alerting-topic messages read for unapplied silence requests


def pending_requests(
    settings: Settings, timeout: float = 10.0
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Silence requests sent to the alert manager that it has not applied yet: the
    ``silence_add`` and ``silence_expire`` messages of ``spanwatch.alerting`` after the
    offset the workers' group (``worker.app_id``) committed there (from the start when no
    worker ever ran). Returns (silences being added by id, ids being expired)."""
    from confluent_kafka import Consumer, TopicPartition

    from spanwatch.runtime.kafka import require_topic, settings_config

    topic = settings.topics.alerting
    require_topic(settings, topic, partitions=1)
    base = settings_config(settings, "consumer")
    group = Consumer({**base, "group.id": settings.worker.app_id, "enable.auto.commit": False})
    try:
        (done,) = group.committed([TopicPartition(topic, 0)], timeout=timeout)
    finally:
        group.close()
    c = Consumer(
        {
            **settings_config(settings, "consumer"),
            "group.id": f"spanwatch-cli-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    adds: dict[str, dict[str, Any]] = {}
    expires: set[str] = set()
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout)
        start = max(done.offset if done.offset is not None and done.offset >= 0 else low, low)
        start = max(start, high - MAX_PENDING_SCAN)
        if start >= high:
            return adds, expires
        c.assign([TopicPartition(topic, 0, start)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error() is not None:
                continue
            if m.key() == b"control":
                msg = json.loads(m.value() or b"{}")
                if msg.get("type") == "silence_add":
                    adds[msg["silence"]["id"]] = msg["silence"]
                elif msg.get("type") == "silence_expire":
                    expires.add(str(msg.get("id")))
            if (m.offset() or 0) >= high - 1:
                break
    finally:
        c.close()
    return adds, expires


def cmd_silence_add(args: argparse.Namespace, settings: Settings) -> int:
    now = time.time()
    try:
        s = Silence.create(
            args.matcher, now, now + parse_duration_s(args.duration), args.author, args.comment
        )
    except ValueError as exc:
        raise SpanwatchError(str(exc)) from None
    _send(settings, {"type": "silence_add", "silence": s.to_dict()})
    print(s.id)
    return 0


def cmd_silence_expire(args: argparse.Namespace, settings: Settings) -> int:
    known = read_silences(settings)
    adds, _ = pending_requests(settings)
    if args.id not in known and args.id not in adds:
        raise SpanwatchError(
            f"no silence {args.id!r} (spanwatch silence list --all shows every silence)"
        )
    _send(settings, {"type": "silence_expire", "id": args.id})
    print(f"expire requested for {args.id}")
    return 0


def cmd_silence_list(args: argparse.Namespace, settings: Settings) -> int:
    now = time.time()
    applied = read_silences(settings)
    adds, expires = pending_requests(settings)
    rows = sorted(
        [{**s, "pending": False} for s in applied.values()]
        + [{**s, "pending": True} for sid, s in adds.items() if sid not in applied],
        key=lambda s: s["ends_at"],
    )
    shown = [s for s in rows if args.all or s["ends_at"] > now]
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    for s in shown:
        state = "active" if s["starts_at"] <= now < s["ends_at"] else "expired"
        if s["pending"]:
            state = "pending"  # sent; no alert manager has applied it yet
        elif s["id"] in expires:
            state = "expiring"
        left = max(s["ends_at"] - now, 0)
        print(
            f"{s['id']}  {state:<8}  {left / 60:7.1f} min left  "
            f"{' '.join(s['matchers'])}  by {s['created_by'] or '-'}: {s['comment']}"
        )
    if any(s["pending"] for s in shown):
        print(
            "pending: not applied by an alert manager yet (is a worker running with "
            f"worker.app_id {settings.worker.app_id!r}?)"
        )
    if not shown:
        print("no silences" if not rows else "no active silences (--all shows expired ones)")
    return 0


def add_parsers(sub: Any, settings_of: Any, kafka_opts: Any) -> None:
    r = sub.add_parser("rules", help="alert rules: check files, run rule unit tests")
    verbs = r.add_subparsers(dest="verb", required=True)
    c = verbs.add_parser("check", help="validate rule files and directories (exit 1 on errors)")
    c.add_argument("paths", nargs="+")
    c.set_defaults(func=lambda ns: cmd_check(ns, settings_of(ns)))
    t = verbs.add_parser("test", help="run rule unit tests (input series -> expected alerts)")
    t.add_argument("files", nargs="+")
    t.set_defaults(func=cmd_test)

    s = sub.add_parser("silence", help="silence alerts (stored by the alert manager)")
    sverbs = s.add_subparsers(dest="verb", required=True)
    a = sverbs.add_parser("add", help="create a silence; prints its id")
    kafka_opts(a)
    a.add_argument(
        "--matcher",
        "-m",
        action="append",
        required=True,
        help='label matcher, e.g. model="qwen-max" or service=~"chat-.*"',
    )
    a.add_argument("--duration", "-d", default="2h", help="how long (default 2h)")
    a.add_argument("--author", default="", help="who")
    a.add_argument("--comment", default="", help="why")
    a.set_defaults(func=lambda ns: cmd_silence_add(ns, settings_of(ns)))
    ls = sverbs.add_parser("list", help="list silences")
    kafka_opts(ls)
    ls.add_argument("--all", action="store_true", help="include expired silences")
    ls.add_argument("--json", action="store_true", help="print the silences as JSON")
    ls.set_defaults(func=lambda ns: cmd_silence_list(ns, settings_of(ns)))
    e = sverbs.add_parser("expire", help="end a silence now")
    kafka_opts(e)
    e.add_argument("id")
    e.set_defaults(func=lambda ns: cmd_silence_expire(ns, settings_of(ns)))
