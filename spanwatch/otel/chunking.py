"""Producing side of chunked payloads, for apps instrumented with the OpenTelemetry Python SDK.

Wrap your span exporter::

    exporter = ChunkingSpanExporter(OTLPSpanExporter(...), max_attribute_bytes=32_768)
    provider.add_span_processor(BatchSpanProcessor(exporter))

Content attributes larger than ``max_attribute_bytes`` (``gen_ai.input.messages``,
``gen_ai.output.messages``, ``input.value``, ...) are removed from the span and sent as
``gen_ai.content.chunk`` events on small carrier spans of the same trace, a few pieces per
carrier, the carriers exported in separate batches after the span itself, so no export
request comes near a collector's message limit. The span keeps
``gen_ai.content.chunked_payloads`` (the payload ids). See docs/CHUNKING.md.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind

from spanwatch.pipeline.ingest.conventions import CONTENT_ATTRS
from spanwatch.pipeline.stitch import chunks as ck
from spanwatch.pipeline.stitch.chunks import make_pieces

CHUNKED = "gen_ai.content.chunked_payloads"
CARRIER_NAME = "gen_ai.content.chunks"


class ChunkingSpanExporter(SpanExporter):
    """Exporter wrapper that moves oversized content attributes into chunk events."""

    def __init__(
        self,
        inner: SpanExporter,
        *,
        max_attribute_bytes: int = 32_768,
        piece_bytes: int = 32_768,
        pieces_per_carrier: int = 4,
        max_export_bytes: int = 800_000,
        encoding: str = "utf-8",
        attributes: Sequence[str] = tuple(CONTENT_ATTRS),
    ) -> None:
        if encoding not in ck.ENCODINGS:
            raise ValueError(f"encoding must be one of {ck.ENCODINGS}")
        self.inner = inner
        self.max_attribute_bytes = max_attribute_bytes
        self.piece_bytes = piece_bytes
        self.pieces_per_carrier = pieces_per_carrier
        self.max_export_bytes = max_export_bytes
        self.encoding = encoding
        self.attributes = frozenset(attributes)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        kept: list[ReadableSpan] = []
        carriers: list[ReadableSpan] = []
        for span in spans:
            attrs: dict[str, Any] = dict(span.attributes or {})
            big = {
                k: v
                for k, v in attrs.items()
                if k in self.attributes
                and isinstance(v, str)
                and len(v.encode("utf-8")) > self.max_attribute_bytes
            }
            if not big:
                kept.append(span)
                continue
            ids = []
            for key, text in big.items():
                pid = f"{span.context.span_id:016x}:{key}"
                ids.append(pid)
                del attrs[key]
                pieces = make_pieces(
                    str(text),
                    pid,
                    CONTENT_ATTRS.get(key, "input"),
                    piece_bytes=self.piece_bytes,
                    encoding=self.encoding,
                )
                carriers.extend(self._carriers(span, pieces))
            attrs[CHUNKED] = ids
            kept.append(_copy(span, attrs))
        result = self.inner.export(kept)
        for batch in _by_size(carriers, self.max_export_bytes):
            if self.inner.export(batch) is not SpanExportResult.SUCCESS:
                result = SpanExportResult.FAILURE
        return result

    def _carriers(
        self, span: ReadableSpan, pieces: list[dict[str, object]]
    ) -> Iterator[ReadableSpan]:
        ctx = span.context
        t = span.end_time or span.start_time or 0
        for group in _batches(pieces, self.pieces_per_carrier):
            yield ReadableSpan(
                name=CARRIER_NAME,
                context=SpanContext(
                    ctx.trace_id,
                    random.getrandbits(64) or 1,
                    False,
                    ctx.trace_flags,
                    ctx.trace_state,
                ),
                parent=ctx,
                resource=span.resource,
                kind=SpanKind.INTERNAL,
                attributes={ck.A_TARGET: f"{ctx.span_id:016x}"},
                events=[Event(ck.EVENT, attributes=g, timestamp=t) for g in group],  # type: ignore[arg-type]
                start_time=t,
                end_time=t,
                instrumentation_scope=span.instrumentation_scope,
            )

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _copy(span: ReadableSpan, attrs: dict[str, Any]) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attrs,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _carrier_bytes(span: ReadableSpan) -> int:
    return sum(len(str((e.attributes or {}).get(ck.A_DATA, ""))) + 200 for e in span.events)


def _by_size(carriers: list[ReadableSpan], budget: int) -> Iterator[list[ReadableSpan]]:
    """Export batches of carriers, each under ``budget`` bytes of piece data (at least one)."""
    batch: list[ReadableSpan] = []
    size = 0
    for c in carriers:
        n = _carrier_bytes(c)
        if batch and size + n > budget:
            yield batch
            batch, size = [], 0
        batch.append(c)
        size += n
    if batch:
        yield batch


_T = TypeVar("_T")


def _batches(items: list[_T], n: int) -> Iterator[list[_T]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
