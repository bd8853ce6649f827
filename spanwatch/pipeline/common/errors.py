"""One exception hierarchy for spanwatch: callers catch ``SpanwatchError`` and nothing wider."""

from __future__ import annotations

import re
import traceback


class SpanwatchError(Exception):
    """Base of every error spanwatch raises on purpose."""


class ConfigError(SpanwatchError):
    """Configuration is invalid; the message says where and why."""


class DecodeError(SpanwatchError):
    """A Kafka message could not be decoded as OTLP traces.

    ``reason`` is a short, stable, low-cardinality token used as the dead-letter reason header
    and as a metric label; ``detail`` is free text for humans (never payload content).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BrokerError(SpanwatchError):
    """The embedded broker could not be started, reached or stopped."""


_QUOTED = re.compile(r"b?'[^']*'|b?\"[^\"]*\"")


def describe_error(exc: BaseException) -> str:
    """One line for an exception raised on input: its type and message, with every quoted
    literal masked. Messages such as ``invalid literal for int(): '1391234...'`` quote the
    input, and this line goes to logs and dead-letter headers, where payload bytes never go."""
    return f"{type(exc).__name__}: {_QUOTED.sub('<…>', str(exc))}"[:300]


def describe_traceback(exc: BaseException) -> str:
    """Where an exception was raised (the code's frames) and :func:`describe_error`: a
    traceback for debugging that shows no value of the input."""
    return "".join(traceback.format_tb(exc.__traceback__)) + describe_error(exc)
