"""The text of inline prompts and completions of one span, read while ingest holds it.

Normalization records *where* content is (:class:`~pipeline.ingest.spans.ContentRef`); this reads it
from the decoded span while it is still in memory, as :class:`ContentItem` for the stages that
read text (safety scanners, prompt clusters). Message lists stored as JSON strings are scanned
as the text they hold (:mod:`pipeline.safety.messages`, applied by the safety engine).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .otlp import SpanView
from .spans import LlmSpan


@dataclass(frozen=True, slots=True)
class ContentItem:
    """One prompt or completion to scan, and where it came from (never logged whole)."""

    text: str
    role: str  # input | output | system | tool
    location: str  # attribute key, "event:<name>" or "payload:<id>"
    trace_id: str = ""
    span_id: str = ""
    service: str = ""
    model: str = ""
    time_ns: int = 0

    def provenance(self) -> dict[str, Any]:
        """Where the item came from, as every ``spanwatch.findings`` record carries it."""
        return {
            "role": self.role,
            "location": self.location,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "service": self.service,
            "model": self.model,
            "time_ns": self.time_ns or time.time_ns(),
        }

    def __repr__(self) -> str:  # the text stays out of logs and tracebacks
        return (
            f"ContentItem(role={self.role!r}, location={self.location!r}, "
            f"trace_id={self.trace_id!r}, chars={len(self.text)})"
        )


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return None


def inline_content(view: SpanView, span: LlmSpan) -> Iterator[ContentItem]:
    """One item per inline content reference of ``span`` that holds text."""
    for ref in span.content:
        if ref.kind != "inline":
            continue
        if ref.location.startswith("event:"):
            name = ref.location[6:]
            parts = [
                t
                for ev in view.events
                if ev.name == name
                for v in ev.attrs.values()
                if (t := _as_text(v))
            ]
            text: str | None = "\n".join(parts) if parts else None
        else:
            text = _as_text(view.attrs.get(ref.location))
        if text:
            yield ContentItem(
                text,
                ref.role,
                ref.location,
                span.trace_id,
                span.span_id,
                span.service,
                span.model or "",
                span.end_ns,
            )
