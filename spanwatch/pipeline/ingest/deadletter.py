"""Dead letters: what could not be processed, with the original bytes and a reason.

Headers on every dead letter (all values UTF-8):

``spanwatch.reason``            stable low-cardinality reason (also the metric label)
``spanwatch.detail``            human-readable detail (never payload content)
``spanwatch.source.topic``      source topic, ``spanwatch.source.partition``, ``...offset``
``spanwatch.scope``             ``message`` (value is the original message) or ``spans``
                                (value holds only the rejected spans, re-encoded in the source
                                encoding, so replaying a dead letter never duplicates good spans)
``spanwatch.original-size``     size of the original value when it was cut (oversized messages,
                                and any dead letter above ``ingest.deadletter_max_bytes``)
``spanwatch.truncated``         ``true`` when the value holds only the start of the original

A dead letter is always small enough to send: its value is cut to a bound below the
producer's request limit (:meth:`DeadLetter.bounded`), so bad input can never make the
dead-letter send itself fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

MAX_KEY_BYTES = 1024  # a dead letter keeps this much of its message's key


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
            if len(self.value) < self.original_size:
                h.append(("spanwatch.truncated", b"true"))
        return h

    def bounded(self, max_bytes: int) -> DeadLetter:
        """This dead letter with its value cut to ``max_bytes`` (and its key to
        :data:`MAX_KEY_BYTES`); the original size goes to a header."""
        key = self.key[:MAX_KEY_BYTES] if self.key is not None else None
        if len(self.value) <= max_bytes:
            return self if key is self.key else replace(self, key=key)
        size = self.original_size if self.original_size is not None else len(self.value)
        return replace(self, value=self.value[:max_bytes], original_size=size, key=key)

    def without_value(self) -> DeadLetter:
        """Only the reason and where it came from: what is sent when even a bounded dead
        letter could not be (the message stays on its source topic at that offset)."""
        size = self.original_size if self.original_size is not None else len(self.value)
        return replace(self, value=b"", original_size=size, key=None)
