"""Notification messages and their delivery through apprise.

``format_message`` renders one group's alerts for a receiver: Markdown for Slack (apprise turns
it into Slack mrkdwn), DingTalk (sent as a DingTalk ``markdown`` message, with ``@mobile``
mentions) and other Markdown targets; plain text for ``text`` and the console.

``deliver`` says whether to retry, as Alertmanager's notifiers do (``pipeline.common.retry``):
success; ``retry`` for 5xx, 408, 425, 429, timeouts and connection errors; ``config`` for other
4xx, invalid URLs and "no target" (apprise matched nothing). apprise reports the HTTP status
only in its log lines (``error=404``): each delivery reads the lines apprise captured for its
own call (apprise >= 2.3 keeps them per call and attempt), never a shared logger's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..common.errors import ConfigError
from ..common.retry import retryable_status
from ..common.settings import expand_env
from .routing import Receiver

MAX_LISTED = 10


def receiver_format(receiver: Receiver, url: str = "") -> str:
    if receiver.format != "auto":
        return receiver.format
    if receiver.console and not url:
        return "text"
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("slack",) or "hooks.slack.com" in url:
        return "slack"
    if scheme == "dingtalk" or "oapi.dingtalk.com" in url:
        return "dingtalk"
    return "markdown"


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S UTC")


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_message(
    receiver: Receiver, group_labels: dict[str, str], alerts: list[dict[str, Any]]
) -> tuple[str, str]:
    """(title, body) for one notification of a group; ``alerts`` as built by the manager."""
    firing = [a for a in alerts if a["status"] == "firing"]
    resolved = [a for a in alerts if a["status"] == "resolved"]
    names = sorted({a["alertname"] for a in alerts})
    state = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    glabels = " ".join(f"{k}={v}" for k, v in group_labels.items() if k != "alertname" and v)
    title = f"[{state}] {', '.join(names)}" + (f" ({glabels})" if glabels else "")
    md = receiver_format(receiver) != "text"
    lines: list[str] = []
    for section, items in (("Firing", firing), ("Resolved", resolved)):
        if not items:
            continue
        lines.append(f"**{section}**" if md else f"{section}:")
        for a in items[:MAX_LISTED]:
            lines += _alert_lines(a, md)
        if len(items) > MAX_LISTED:
            lines.append(f"... and {len(items) - MAX_LISTED} more")
    if receiver.mentions and receiver_format(receiver, "dingtalk://") == "dingtalk":
        lines.append(" ".join(f"@{m}" for m in receiver.mentions))
    return title, "\n".join(lines)


def _alert_lines(a: dict[str, Any], md: bool) -> list[str]:
    ann = a.get("annotations", {})
    labels = a["labels"]
    sev = labels.get("severity", "")
    ident = " ".join(
        f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity") and v
    )
    head = f"**{a['alertname']}**" if md else a["alertname"]
    out = [f"- {head}{' [' + sev + ']' if sev else ''} {ident}".rstrip()]
    for key in ("summary", "description"):
        if ann.get(key):
            out.append(f"  {ann[key]}")
    detail = f"  value {_value(a['value'])}" if a.get("value") is not None else ""
    if a.get("since") and a["status"] == "firing":
        detail += f", since {_when(a['since'])}"
    if a.get("trace_url"):
        detail += (
            f", [example trace]({a['trace_url']})" if md else f", example trace {a['trace_url']}"
        )
    if detail:
        out.append(detail if detail.startswith("  ") else "  " + detail.lstrip(", "))
    return out


@dataclass(frozen=True)
class Delivery:
    outcome: str  # ok | retry | config
    error: str = ""


_STATUS = re.compile(r"error=(\d{3})")
_INSTALL = threading.Lock()


def quiet_apprise() -> None:
    """Keep apprise's log lines out of the worker's log (idempotent): they carry receiver
    URLs and tokens at every level. apprise still captures each call's own lines for its
    result, which is where :func:`classify` reads a status."""
    logger = logging.getLogger("apprise")
    with _INSTALL:
        logger.propagate = False


def resolve_url(receiver: Receiver, url: str) -> str:
    """``${VAR}`` expanded; DingTalk mentions added as apprise targets (``atMobiles``)."""
    out = expand_env(url)
    if (
        receiver.mentions
        and receiver_format(receiver, out) == "dingtalk"
        and out.startswith("dingtalk://")
    ):
        base, _, query = out.partition("?")
        out = base.rstrip("/") + "/" + "/".join(receiver.mentions) + (f"?{query}" if query else "")
    return out


def deliver(
    receiver: Receiver, url: str, title: str, body: str, timeout_s: float | None = None
) -> Delivery:
    """One apprise call to one URL (blocking: run it in a thread). Its outcome comes from this
    call's own result alone, never from a shared logger: deliveries run in parallel threads,
    and a timed-out attempt once read a neighbour's ``error=400`` there and was dropped as a
    configuration error. ``timeout_s`` is how long to wait for the receiver's answer
    (apprise's ``rto``, 4 s by default; a URL that sets ``rto=`` keeps its own)."""
    import apprise

    quiet_apprise()
    try:
        target = resolve_url(receiver, url)
    except ConfigError as exc:
        return Delivery("config", str(exc))
    a = apprise.Apprise()
    if not a.add(target):
        return Delivery("config", "not a valid apprise URL")
    if timeout_s is not None and "rto=" not in target:
        for server in a:
            server.socket_read_timeout = timeout_s
    fmt = receiver_format(receiver, target)
    body_format = apprise.NotifyFormat.TEXT if fmt == "text" else apprise.NotifyFormat.MARKDOWN
    return classify(a.notify(body=body, title=title, body_format=body_format))


DELIVERY_THREADS = 16  # deliveries running at once, each in its own thread
DELIVERY_GUARD = 4  # x the delivery timeout (+ grace): a delivery thread that never returned
DELIVERY_GRACE_S = 10.0


class Deliverer:
    """Runs deliveries, each in a thread of its own, so that no delivery waits in a queue on
    the clock of its timeout (the default executor has cores + 4 threads, shared with
    everything else). apprise's own timeouts end a call (connect, then ``timeout_s`` for the
    answer); a guard only keeps a wedged thread from holding its slot forever. ``console``
    prints the notifications of a receiver's console target."""

    def __init__(
        self,
        timeout_s: float,
        console: Callable[[str], None] = lambda text: print(text, flush=True),
        threads: int = DELIVERY_THREADS,
    ) -> None:
        self.timeout_s = timeout_s
        self.console = console
        self.pool = ThreadPoolExecutor(threads, "spanwatch-notify")
        self.slots = asyncio.Semaphore(threads)

    async def __call__(
        self, receivers: Mapping[str, Receiver], name: str, url_index: int, title: str, body: str
    ) -> Delivery:
        """One notification to one target of receiver ``name`` (-1: its console); never
        raises."""
        receiver = receivers.get(name)
        if receiver is None:
            return Delivery("config", f"unknown receiver {name!r}")
        if url_index < 0:
            self.console(f"{title}\n{body}")
            return Delivery("ok")
        url, timeout = receiver.urls[url_index], self.timeout_s
        loop = asyncio.get_running_loop()
        async with self.slots:  # a free thread for each running delivery: no queueing
            try:
                return await asyncio.wait_for(
                    loop.run_in_executor(self.pool, deliver, receiver, url, title, body, timeout),
                    DELIVERY_GUARD * timeout + DELIVERY_GRACE_S,
                )
            except TimeoutError:
                return Delivery("retry", "delivery thread did not return")
            except Exception as exc:
                return Delivery("retry", type(exc).__name__)


def classify(result: Any) -> Delivery:
    """apprise's result of one call -> ok / retry / config. The status of a failure is read
    from the lines apprise captured for that call's last attempt (``error=404``)."""
    status = getattr(result, "status", None)
    name = getattr(status, "name", None)
    if result is True or name == "SUCCESS":
        return Delivery("ok")
    if result is None or name == "NOMATCH":
        return Delivery("config", "apprise matched no target")
    attempts = [r.attempts[-1] for r in getattr(result, "results", ()) if r.attempts]
    if name == "TIMEOUT" or any(a.status.name == "TIMEOUT" for a in attempts):
        return Delivery("retry", "timeout")
    text = "\n".join(entry.message for a in attempts for entry in a.logs)
    codes = [int(c) for c in _STATUS.findall(text)]
    if codes:
        code = codes[-1]
        if retryable_status(code):
            return Delivery("retry", f"HTTP {code}")
        return Delivery("config", f"HTTP {code}: check the URL and its token")
    return Delivery("retry", "no answer (timeout or connection error)")
