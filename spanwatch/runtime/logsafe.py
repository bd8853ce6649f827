"""No secret, receiver URL or payload byte in any log line, at any level.

Two guards on every handler of the root logger:

* third-party loggers (faust, aiokafka, urllib3, ...) pass at INFO and above only. At DEBUG they
  echo what they send and receive: a dead letter's original bytes (a prompt, a phone number,
  an API key), a webhook's request line (``POST /down/<token>``). spanwatch's own loggers
  keep DEBUG, and they never log payloads or URLs.
* every secret the configuration holds (receiver URLs and their parts, Kafka and judge
  passwords and keys) is replaced by ``<secret>`` in whatever line still carries it.

apprise's logger is cut off entirely (:func:`~spanwatch.pipeline.alerting.notify.quiet_apprise`):
its lines name full URLs at every level, and a delivery reads its outcome from apprise's own
result. Like alertmanager's ``<secret>``: what is redacted is never shown, only that it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from spanwatch.pipeline.alerting.notify import quiet_apprise

OWN = "spanwatch"
MIN_SECRET_CHARS = 6  # shorter parts ("api", "v1", a port) are not secrets and too common
REDACTED = "<secret>"


def url_secrets(url: str) -> set[str]:
    """The parts of a receiver URL that may be a secret: the URL itself, its user info, its
    path and every path segment, query value and fragment (webhook tokens live in any of
    them: ``hooks.slack.com/services/T/B/<token>``, ``dingtalk://<token>``,
    ``json://host/path?key=<token>``). An apprise URL's host may be a token too
    (``dingtalk://<token>``)."""
    out = {url}
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    pieces = [parts.username or "", parts.password or "", parts.path, parts.fragment]
    if "://" in url and parts.scheme not in ("http", "https", "json", "xml", "form"):
        pieces.append(parts.netloc.rpartition("@")[2].partition(":")[0])  # case kept
    pieces += parts.path.split("/")
    for pair in parts.query.split("&"):
        pieces.append(pair.partition("=")[2])
    for piece in pieces:
        for form in (piece, unquote(piece)):
            if len(form.strip("/")) >= MIN_SECRET_CHARS:
                out.add(form)
    return out


class SafeLogFilter(logging.Filter):
    """The two guards of this module, as a handler filter."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS} | set(self.secrets)
        self.secrets = sorted(found, key=len, reverse=True)  # a URL before its parts

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if record.levelno < logging.INFO and not (name == OWN or name.startswith(OWN + ".")):
            return False
        if self.secrets:
            try:
                text = record.getMessage()
            except Exception:  # a line that cannot be formatted is dropped, not shown raw
                return False
            changed = False
            for secret in self.secrets:
                if secret in text:
                    text, changed = text.replace(secret, REDACTED), True
            if changed:
                record.msg, record.args = text, None
            if record.exc_text:
                for secret in self.secrets:
                    record.exc_text = record.exc_text.replace(secret, REDACTED)
        return True


FILTER = SafeLogFilter()  # one per process: the worker adds its secrets at start


def install(root: logging.Logger | None = None, secrets: Iterable[str] = ()) -> SafeLogFilter:
    """Put :data:`FILTER` (with ``secrets`` added) on every handler of ``root`` (idempotent;
    call again after something replaced the handlers, as faust's worker does at start)."""
    quiet_apprise()
    FILTER.add(secrets)
    for handler in (root or logging.getLogger()).handlers:
        if FILTER not in handler.filters:
            handler.addFilter(FILTER)
    return FILTER
