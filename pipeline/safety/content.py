"""The text of inline prompts and completions of one span, for scanning.

Normalization records *where* content is (:class:`~pipeline.ingest.spans.ContentRef`); this reads it
from the decoded span while it is still in memory. Message lists stored as JSON strings are
scanned as the text they hold (:mod:`pipeline.safety.messages`, applied by the engine).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..ingest.otlp import SpanView
from ..ingest.spans import LlmSpan
from .scan import ContentItem


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
