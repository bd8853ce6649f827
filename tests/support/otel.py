"""OpenTelemetry SDK helpers for tests: spans exported as Kafka message values."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class ToMessages(SpanExporter):
    """Each export call becomes one Kafka message value (as a collector batch would)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.messages.append(encode_spans(spans).SerializeToString())
        return SpanExportResult.SUCCESS
