"""``spanwatch health``: ask a worker's health endpoint; exit 0 when it answers 200.

For container healthchecks and scripts: one line on stdout (the state and any stalled
stage), exit 0 (healthy/ready), 1 (answered, not healthy/ready) or 2 (no answer).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any


def add_parser(sub: Any) -> None:
    h = sub.add_parser("health", help="check a worker's /readyz (or --url): exit 0 when OK")
    h.add_argument(
        "--url",
        default="http://127.0.0.1:9464/readyz",
        help="endpoint to ask (/readyz: readiness, /healthz: liveness)",
    )
    h.add_argument("--timeout", type=float, default=3.0, help="seconds")
    h.set_defaults(func=_cmd_health)


def _cmd_health(args: argparse.Namespace) -> int:
    try:
        with urllib.request.urlopen(args.url, timeout=args.timeout) as resp:
            code, body = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        code, body = err.code, err.read()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"spanwatch health: no answer from {args.url}: {reason}", file=sys.stderr)
        return 2
    try:
        info = json.loads(body)
    except ValueError:
        info = {}
    stalled = info.get("stalled") or []
    line = f"{code} {info.get('state', '?')}" + (
        f" stalled: {', '.join(stalled)}" if stalled else ""
    )
    print(line)
    return 0 if code == 200 else 1
