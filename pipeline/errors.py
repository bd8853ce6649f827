"""One exception hierarchy for spanwatch: callers catch ``SpanwatchError`` and nothing wider."""

from __future__ import annotations


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
