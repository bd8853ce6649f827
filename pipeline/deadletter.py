"""Dead letters: what could not be processed, with the original bytes and a reason.

Headers on every dead letter (all values UTF-8):

``spanwatch.reason``            stable low-cardinality reason (also the metric label)
``spanwatch.detail``            human-readable detail (never payload content)
``spanwatch.source.topic``      source topic, ``spanwatch.source.partition``, ``...offset``
``spanwatch.scope``             ``message`` (value is the original message) or ``spans``
                                (value holds only the rejected spans, re-encoded in the source
                                encoding, so replaying a dead letter never duplicates good spans)
``spanwatch.original-size``     size of the original value when it was truncated (oversized)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a Kafka message came from (for dead letters and log lines)."""

    topic: str = ""
    partition: int = -1
    offset: int = -1

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record for the dead-letter topic."""

    reason: str
    detail: str
    value: bytes = field(repr=False)  # payloads may hold prompts: never in logs or repr
    source: SourceRef = SourceRef()
    scope: str = "message"
    original_size: int | None = None
    key: bytes | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        h = [
            ("spanwatch.reason", self.reason.encode()),
            ("spanwatch.detail", self.detail[:500].encode("utf-8", "replace")),
            ("spanwatch.source.topic", self.source.topic.encode()),
            ("spanwatch.source.partition", str(self.source.partition).encode()),
            ("spanwatch.source.offset", str(self.source.offset).encode()),
            ("spanwatch.scope", self.scope.encode()),
        ]
        if self.original_size is not None:
            h.append(("spanwatch.original-size", str(self.original_size).encode()))
        return h
