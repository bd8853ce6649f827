"""One Kafka message in -> normalized records and dead letters out (the ingest agent's body).

A message carries a whole export batch; it is decoded and normalized in one call, so the
per-message cost of the stream processor is paid once per batch, not once per span.
This function never raises for bad input: every failure becomes a :class:`DeadLetter`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from ..common.errors import DecodeError, describe_error
from ..stitch.chunks import EVENT as CHUNK_EVENT
from ..stitch.chunks import Piece, extract_pieces
from .content import ContentItem, inline_content
from .deadletter import DeadLetter, SourceRef
from .dedupe import mark_duplicates
from .inherit import inherit_models
from .normalize import NormalizeOptions, normalize
from .otlp import DecodedBatch, Encoding, RejectedSpan, SpanView, decode, view_resource_spans
from .spans import Layer, LlmSpan

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEADLETTER_SNIPPET_BYTES = 64 * 1024  # what an oversized message keeps in its dead letter
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """How far a span's end may stray from the time of the world (event time is bounded by
    wall time: one host's clock, or one corrupt span, must not move a partition's watermark).

    ``wall_ns`` is the worker's clock when the message is handled; ``broker_ns`` the message's
    broker timestamp (0: unknown). A span ending later than ``wall_ns + max_future_ns`` cannot
    have ended yet: it is moved back to ``wall_ns`` (its duration and events kept) and flagged
    ``clock_skew:future``. A span ending later than ``wall_ns + max_skew_ns``, or earlier than
    the message's broker timestamp (else the wall clock) minus ``max_skew_ns``, carries a
    timestamp nobody can place (the year 2200, 1970): it goes to the dead-letter topic
    (``timestamp_out_of_range``) instead of being counted anywhere."""

    wall_ns: int
    broker_ns: int = 0
    max_future_ns: int = 5 * NS
    max_skew_ns: int = 86_400 * NS

    def check(self, end_ns: int) -> int:
        """0 when ``end_ns`` is fine (or unknown), the shift to apply when it is ahead of the
        wall clock, -1 when it is out of range."""
        if end_ns <= 0:
            return 0  # no timestamp: flagged missing by normalization
        ahead = end_ns - self.wall_ns
        if ahead > self.max_skew_ns:
            return -1
        if ahead > self.max_future_ns:
            return ahead
        past_ref = self.broker_ns if 0 < self.broker_ns < self.wall_ns else self.wall_ns
        return -1 if past_ref - end_ns > self.max_skew_ns else 0


_NO_SOURCE = SourceRef()


@dataclass(frozen=True)
class IngestOptions:
    encoding: Encoding = Encoding.AUTO
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    normalize: NormalizeOptions = field(default_factory=NormalizeOptions)
    collect_content: bool = False  # keep inline prompt/completion text for safety checks
    max_future_skew_ns: int = 5 * NS  # see TimeBounds
    max_timestamp_skew_ns: int = 86_400 * NS


@dataclass(slots=True)
class IngestResult:
    spans: list[LlmSpan] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    pieces: list[Piece] = field(default_factory=list)  # chunked-payload pieces (events)
    bad_pieces: list[str] = field(default_factory=list)  # reasons of unusable chunk events
    contents: list[ContentItem] = field(default_factory=list)  # inline text (collect_content)
    seen: int = 0  # spans decoded (records + skipped + rejected)
    skipped_non_llm: int = 0
    rejected: int = 0
    duplicates: int = 0  # framework spans repeating a client span's call (pipeline.ingest.dedupe)
    future_shifted: int = 0  # records moved back to the wall clock (TimeBounds)
    out_of_range: int = 0  # records dead-lettered for a timestamp nobody can place


@dataclass
class IngestStats:
    """Running counters of one worker (exported as Prometheus counters by the agent)."""

    messages: int = 0
    spans_seen: int = 0
    records: int = 0
    skipped_non_llm: int = 0
    rejected_spans: int = 0
    partial_spans: int = 0
    duplicate_llm_spans: int = 0
    future_shifted: int = 0
    out_of_range: int = 0
    pieces: int = 0
    bad_pieces: Counter[str] = field(default_factory=Counter)
    sink_errors: int = 0  # a later stage raised on a message (logged with its offset)
    deadletter_send_errors: int = 0  # dead letters that could not be sent at all
    deadletters: Counter[str] = field(default_factory=Counter)

    def add(self, result: IngestResult) -> None:
        self.messages += 1
        self.spans_seen += result.seen
        self.records += len(result.spans)
        self.skipped_non_llm += result.skipped_non_llm
        self.rejected_spans += result.rejected
        self.partial_spans += sum(1 for s in result.spans if s.issues)
        self.duplicate_llm_spans += result.duplicates
        self.future_shifted += result.future_shifted
        self.out_of_range += result.out_of_range
        self.pieces += len(result.pieces)
        self.bad_pieces.update(result.bad_pieces)
        for dl in result.dead_letters:
            self.deadletters[dl.reason] += 1


def headers_dict(raw: Any) -> dict[str, bytes]:
    """Headers as faust (a list of pairs or a mapping) or aiokafka (a tuple of pairs) gives
    them, as one dict; a header without a value (Kafka allows null) is empty."""
    if not raw:
        return {}
    items = raw.items() if isinstance(raw, Mapping) else raw
    return {
        str(k): (v if isinstance(v, bytes) else b"" if v is None else str(v).encode())
        for k, v in items
    }


def ingest_message(
    value: bytes | None,
    *,
    headers: Mapping[str, bytes] | None = None,
    source: SourceRef = _NO_SOURCE,
    key: bytes | None = None,
    options: IngestOptions | None = None,
    wall_ns: int | None = None,
    broker_ns: int = 0,
) -> IngestResult:
    """Decode and normalize every span of one message; bad input becomes dead letters.

    ``wall_ns`` (the worker's clock) and ``broker_ns`` (the message's broker timestamp, 0 when
    unknown) bound the spans' timestamps (:class:`TimeBounds`); offline tools leave ``wall_ns``
    None and take every timestamp as it is."""
    opts = options or _DEFAULT
    result = IngestResult()
    value = value or b""
    if len(value) > opts.max_message_bytes:
        result.dead_letters.append(
            DeadLetter(
                "oversized",
                f"{len(value)} bytes > max_message_bytes {opts.max_message_bytes}",
                value[:DEADLETTER_SNIPPET_BYTES],
                source,
                original_size=len(value),
                key=key,
            )
        )
        return result
    try:
        batch = decode(value, opts.encoding, headers)
    except DecodeError as exc:
        result.dead_letters.append(DeadLetter(exc.reason, exc.detail, value, source, key=key))
        return result
    except Exception as exc:
        result.dead_letters.append(
            DeadLetter("decoder_error", describe_error(exc), value, source, key=key)
        )
        return result
    bounds = (
        None
        if wall_ns is None
        else TimeBounds(wall_ns, broker_ns, opts.max_future_skew_ns, opts.max_timestamp_skew_ns)
    )
    _normalize_batch(batch, opts, result, bounds)
    if any(r.layer is Layer.MODEL_SERVER and not r.model for r in result.spans):
        views = batch.spans
        inherit_models(
            result.spans,
            {v.span_id: v.parent_span_id for v in views},
            {v.span_id: v.resource for v in views},
            opts.normalize.engine_models,
        )
    if opts.normalize.dedupe_instrumentations:
        result.duplicates = mark_duplicates(result.spans)
    if any(ev.name == CHUNK_EVENT for view in batch.spans for ev in view.events):
        result.pieces, result.bad_pieces = extract_pieces(batch.spans)
    if batch.rejected:
        result.rejected = len(batch.rejected)
        result.dead_letters.append(_rejected_letter(batch, source, key))
    return result


def _normalize_batch(
    batch: DecodedBatch, opts: IngestOptions, result: IngestResult, bounds: TimeBounds | None
) -> None:
    nopts = opts.normalize
    out = result.spans
    undecoded = len(batch.rejected)  # rejected by the decoder; normalization adds its own
    for view in batch.spans:
        shift = bounds.check(view.end_ns) if bounds is not None else 0
        if shift > 0:
            shift_view(view, shift)
        try:
            rec = normalize(view, nopts)
        except Exception as exc:
            batch.rejected.append(RejectedSpan("normalize_error", describe_error(exc), view))
            continue
        if rec is None:
            result.skipped_non_llm += 1
            continue
        if shift < 0:
            assert bounds is not None
            result.out_of_range += 1
            detail = f"span ends at {view.end_ns} ns, worker clock {bounds.wall_ns} ns"
            batch.rejected.append(RejectedSpan("timestamp_out_of_range", detail, view))
            continue
        if shift > 0:
            result.future_shifted += 1
            rec.issues = (*rec.issues, "clock_skew:future")
        out.append(rec)
        if opts.collect_content and rec.content:
            result.contents.extend(inline_content(view, rec))
    result.seen = len(batch.spans) + undecoded


def shift_view(view: SpanView, shift_ns: int) -> None:
    """Move a span (its start, end and events) ``shift_ns`` back in time: durations and the
    time to first token stay as the span measured them."""
    view.end_ns -= shift_ns
    if view.start_ns > 0:
        view.start_ns = max(view.start_ns - shift_ns, 1)
    for ev in view.events:
        if ev.time_ns > 0:
            ev.time_ns = max(ev.time_ns - shift_ns, 1)


def _rejected_letter(batch: DecodedBatch, source: SourceRef, key: bytes | None) -> DeadLetter:
    reasons = Counter(r.reason for r in batch.rejected)
    reason = reasons.most_common(1)[0][0] if len(reasons) == 1 else "rejected_spans"
    detail = ", ".join(f"{n}x {r}" for r, n in reasons.items())
    first = batch.rejected[0].detail
    if first:
        detail += f" (first: {first})"
    return DeadLetter(reason, detail, _encode_rejected(batch), source, scope="spans", key=key)


def _encode_rejected(batch: DecodedBatch) -> bytes:
    """Re-encode only the rejected spans, in the source encoding: the protobuf or JSON span
    the decoder rejected as it was, a span rejected after decoding from its view (with its
    resource and scope)."""
    data = TracesData()
    loose = None  # spans the decoder rejected (their resource was not kept)
    raws: list[Any] = []  # OTLP/JSON spans the decoder rejected, as they came
    for r in batch.rejected:
        if isinstance(r.raw, SpanView):
            data.resource_spans.append(view_resource_spans(r.raw))
        elif isinstance(r.raw, Span):
            if loose is None:
                loose = data.resource_spans.add().scope_spans.add()
            loose.spans.add().CopyFrom(r.raw)
        else:
            raws.append(r.raw)
    if batch.encoding is Encoding.OTLP_PROTO and not raws:
        return bytes(data.SerializeToString())
    doc = MessageToDict(data)
    resource_spans: list[Any] = doc.get("resourceSpans", [])
    if raws:
        resource_spans.append({"scopeSpans": [{"spans": raws}]})
    return json.dumps({"resourceSpans": resource_spans}, default=repr).encode()


def records_to_messages(spans: list[LlmSpan], max_records: int = 200) -> list[bytes]:
    """Values for ``spanwatch.spans``: ``{"spans": [...]}`` with at most ``max_records`` each.

    One input batch can hold thousands of spans; chunking keeps every output message well
    under the broker's default 1 MB message limit (~1 KB per record).
    """
    # orjson serializes the slotted dataclasses natively, ~3x faster than to_dict + json
    return [
        orjson.dumps({"spans": spans[i : i + max_records]})
        for i in range(0, len(spans), max_records)
    ]


_DEFAULT = IngestOptions()
