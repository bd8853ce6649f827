"""Decoding Kafka message values into plain views of OTLP spans.

Collectors write either ``otlp_proto`` (a ``TracesData``, byte-identical to an
``ExportTraceServiceRequest``) or ``otlp_json`` (OTLP/JSON: camelCase keys, hex ids, int64 as
strings). Rotel writes a bare JSON array of resource spans. Both decoders produce the same
:class:`SpanView` objects, so normalization has one code path.

Views hold plain Python values (attribute dicts, hex ids); every attribute of a span is read
exactly once, which is the floor of what decoding in Python can cost.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, TracesData

from ..common.errors import DecodeError


class Encoding(StrEnum):
    """Wire encodings of a Kafka message value (names as in the collector's Kafka exporter)."""

    AUTO = "auto"
    OTLP_PROTO = "otlp_proto"
    OTLP_JSON = "otlp_json"


@dataclass(slots=True)
class EventView:
    """One span event: name, timestamp and attributes."""

    name: str
    time_ns: int
    attrs: dict[str, Any]


@dataclass(slots=True)
class SpanView:
    """One span with its resource and scope, as plain Python values."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attrs: dict[str, Any]
    events: list[EventView]
    resource: dict[str, Any]
    scope: str


@dataclass(slots=True)
class RejectedSpan:
    """A span that cannot become a record (no usable ids); kept for the dead-letter topic."""

    reason: str
    detail: str
    raw: Any = None  # the protobuf Span or the JSON dict, re-encoded for the dead letter


@dataclass(slots=True)
class DecodedBatch:
    """Everything one Kafka message value decoded to."""

    encoding: Encoding
    spans: list[SpanView] = field(default_factory=list)
    rejected: list[RejectedSpan] = field(default_factory=list)


_CONTENT_TYPES = {
    "application/x-protobuf": Encoding.OTLP_PROTO,
    "application/protobuf": Encoding.OTLP_PROTO,
    "application/json": Encoding.OTLP_JSON,
}

SPAN_KIND_NAMES = ("unspecified", "internal", "server", "client", "producer", "consumer")


def detect_encoding(value: bytes, headers: Mapping[str, bytes] | None = None) -> Encoding:
    """Content-type header when present, else sniff: JSON starts with ``{`` or ``[``.

    A protobuf ``TracesData`` can never start with ``{`` (0x7B, field 15 start-group) or ``[``
    (0x5B, field 11 start-group), so sniffing is unambiguous for valid input.
    """
    if headers:
        ctype = headers.get("content-type") or headers.get("Content-Type")
        if ctype:
            text = ctype.decode("latin-1") if isinstance(ctype, bytes) else str(ctype)
            found = _CONTENT_TYPES.get(text.split(";", 1)[0].strip().lower())
            if found is not None:
                return found
    head = value[:64].lstrip()
    if head[:1] in (b"{", b"["):
        return Encoding.OTLP_JSON
    return Encoding.OTLP_PROTO


def decode(
    value: bytes, encoding: Encoding = Encoding.AUTO, headers: Mapping[str, bytes] | None = None
) -> DecodedBatch:
    """Decode one message value; raise :class:`DecodeError` with a stable reason if impossible."""
    if not value:
        raise DecodeError("empty", "message value is empty")
    if encoding is Encoding.AUTO:
        guess = detect_encoding(value, headers)
        try:
            batch = _decode_as(guess, value)
        except DecodeError as first:
            # Sniffing can be fooled: a TracesData starts with 0x0A ("\n") and its length
            # byte may be "{" (123). Before giving up, try the other encoding.
            other = Encoding.OTLP_JSON if guess is Encoding.OTLP_PROTO else Encoding.OTLP_PROTO
            try:
                batch = _decode_as(other, value)
            except DecodeError:
                raise first from None
        encoding = batch.encoding
    else:
        batch = _decode_as(encoding, value)
    if not batch.spans and not batch.rejected:
        raise DecodeError("no_spans", f"{encoding.value} value of {len(value)} bytes holds no span")
    return batch


def _decode_as(encoding: Encoding, value: bytes) -> DecodedBatch:
    return decode_proto(value) if encoding is Encoding.OTLP_PROTO else decode_json(value)


# --------------------------------------------------------------------------- protobuf


def any_value(v: AnyValue) -> Any:
    """Convert a protobuf ``AnyValue`` to a Python value (lists and dicts for composites)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return bytes(v.bytes_value)
    return None


def proto_attrs(kvs: Any) -> dict[str, Any]:
    """Read a repeated ``KeyValue`` into a dict (later duplicates win, as in the SDKs)."""
    return {kv.key: any_value(kv.value) for kv in kvs}


def decode_proto(value: bytes) -> DecodedBatch:
    data = TracesData()
    try:
        data.ParseFromString(value)
    except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError("bad_protobuf", str(exc)[:200]) from exc
    batch = DecodedBatch(Encoding.OTLP_PROTO)
    out = batch.spans
    for rs in data.resource_spans:
        resource = proto_attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for sp in ss.spans:
                trace_id = sp.trace_id
                span_id = sp.span_id
                if len(trace_id) != 16 or trace_id == _ZERO16:
                    reject = RejectedSpan("missing_trace_id", _id_detail(trace_id), sp)
                    batch.rejected.append(reject)
                    continue
                if len(span_id) != 8 or span_id == _ZERO8:
                    reject = RejectedSpan("missing_span_id", _id_detail(span_id), sp)
                    batch.rejected.append(reject)
                    continue
                parent = sp.parent_span_id
                events = (
                    [
                        EventView(e.name, e.time_unix_nano, proto_attrs(e.attributes))
                        for e in sp.events
                    ]
                    if sp.events
                    else []
                )
                status = sp.status
                out.append(
                    SpanView(
                        trace_id.hex(),
                        span_id.hex(),
                        parent.hex() if parent else "",
                        sp.name,
                        sp.kind,
                        sp.start_time_unix_nano,
                        sp.end_time_unix_nano,
                        status.code,
                        status.message,
                        {kv.key: any_value(kv.value) for kv in sp.attributes},
                        events,
                        resource,
                        scope,
                    )
                )
    return batch


_ZERO16 = bytes(16)
_ZERO8 = bytes(8)


def set_any_value(out: AnyValue, v: Any) -> None:
    """The inverse of :func:`any_value` (bool before int: a bool is an int in Python)."""
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, int) and -(2**63) <= v < 2**63:
        out.int_value = v
    elif isinstance(v, float):
        out.double_value = v
    elif isinstance(v, bytes):
        out.bytes_value = v
    elif isinstance(v, list | tuple):
        for x in v:
            set_any_value(out.array_value.values.add(), x)
    elif isinstance(v, dict):
        for k, x in v.items():
            set_any_value(out.kvlist_value.values.add(key=str(k)).value, x)
    elif v is not None:
        out.string_value = str(v)


def _key_values(attrs: Mapping[str, Any], out: Any) -> None:
    for k, v in attrs.items():
        kv: KeyValue = out.add(key=k)
        set_any_value(kv.value, v)


def view_resource_spans(view: SpanView) -> ResourceSpans:
    """One decoded span back as OTLP (with its resource and scope), as far as a view keeps it:
    for dead letters of spans rejected after decoding, so that they can be replayed."""
    rs = ResourceSpans()
    _key_values(view.resource, rs.resource.attributes)
    ss = rs.scope_spans.add()
    ss.scope.name = view.scope
    sp = ss.spans.add(
        trace_id=bytes.fromhex(view.trace_id),
        span_id=bytes.fromhex(view.span_id),
        parent_span_id=bytes.fromhex(view.parent_span_id),
        name=view.name,
        kind=view.kind if 0 <= view.kind < len(SPAN_KIND_NAMES) else 0,
        start_time_unix_nano=min(max(view.start_ns, 0), 2**64 - 1),
        end_time_unix_nano=min(max(view.end_ns, 0), 2**64 - 1),
    )
    sp.status.code = view.status_code if 0 <= view.status_code <= 2 else 0
    sp.status.message = view.status_message
    _key_values(view.attrs, sp.attributes)
    for ev in view.events:
        e = sp.events.add(name=ev.name, time_unix_nano=min(max(ev.time_ns, 0), 2**64 - 1))
        _key_values(ev.attrs, e.attributes)
    return rs


def _id_detail(raw: bytes) -> str:
    return f"id of {len(raw)} bytes" if raw else "id is empty"


# --------------------------------------------------------------------------- OTLP/JSON


def decode_json(value: bytes) -> DecodedBatch:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("bad_json", f"not UTF-8 at byte {exc.start}") from exc
    docs = _json_documents(text)
    batch = DecodedBatch(Encoding.OTLP_JSON)
    for doc in docs:
        for rs in _resource_spans(doc):
            _json_resource_spans(rs, batch)
    return batch


def _json_documents(text: str) -> list[Any]:
    """One JSON document, or JSON lines (the collector's file exporter writes those)."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as first:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) < 2:
            where = f"line {first.lineno} column {first.colno}"
            raise DecodeError("bad_json", f"{where}: {first.msg}") from None
        docs = []
        for n, line in enumerate(lines, 1):
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DecodeError("bad_json", f"JSON line {n}: {exc.msg}") from exc
        return docs


def _resource_spans(doc: Any) -> list[Any]:
    if isinstance(doc, list):  # Rotel: a bare array of ResourceSpans
        return doc
    if isinstance(doc, dict):
        found = _get(doc, "resourceSpans", "resource_spans")
        if isinstance(found, list):
            return found
        raise DecodeError("bad_otlp_json", "object has no resourceSpans array")
    kind = type(doc).__name__
    raise DecodeError("bad_otlp_json", f"top level is a {kind}, not an object or array")


def _get(d: Mapping[str, Any], camel: str, snake: str) -> Any:
    v = d.get(camel)
    return d.get(snake) if v is None else v


def _json_resource_spans(rs: Any, batch: DecodedBatch) -> None:
    if not isinstance(rs, dict):
        raise DecodeError("bad_otlp_json", "a resourceSpans entry is not an object")
    res = rs.get("resource") or {}
    resource = json_attrs(res.get("attributes") if isinstance(res, dict) else None)
    for ss in _list(_get(rs, "scopeSpans", "scope_spans")) or _list(
        _get(rs, "instrumentationLibrarySpans", "instrumentation_library_spans")
    ):
        if not isinstance(ss, dict):
            raise DecodeError("bad_otlp_json", "a scopeSpans entry is not an object")
        scope_obj = ss.get("scope") or _get(ss, "instrumentationLibrary", "instrumentation_library")
        scope = str(scope_obj.get("name", "")) if isinstance(scope_obj, dict) else ""
        for sp in _list(ss.get("spans")):
            _json_span(sp, resource, scope, batch)


def _list(v: Any) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise DecodeError("bad_otlp_json", f"expected an array, found {type(v).__name__}")
    return v


def _json_span(sp: Any, resource: dict[str, Any], scope: str, batch: DecodedBatch) -> None:
    if not isinstance(sp, dict):
        raise DecodeError("bad_otlp_json", "a span is not an object")
    trace_id = json_id(_get(sp, "traceId", "trace_id"), 16)
    span_id = json_id(_get(sp, "spanId", "span_id"), 8)
    if not trace_id:
        batch.rejected.append(RejectedSpan("missing_trace_id", "traceId absent or invalid", sp))
        return
    if not span_id:
        batch.rejected.append(RejectedSpan("missing_span_id", "spanId absent or invalid", sp))
        return
    status = sp.get("status") or {}
    if not isinstance(status, dict):
        status = {}
    events = []
    for ev in _list(sp.get("events")):
        if isinstance(ev, dict):
            events.append(
                EventView(
                    str(ev.get("name", "")),
                    json_time(_get(ev, "timeUnixNano", "time_unix_nano")),
                    json_attrs(ev.get("attributes")),
                )
            )
    batch.spans.append(
        SpanView(
            trace_id,
            span_id,
            json_id(_get(sp, "parentSpanId", "parent_span_id"), 8),
            str(sp.get("name", "")),
            _enum(sp.get("kind"), "SPAN_KIND_", SPAN_KIND_NAMES),
            json_time(_get(sp, "startTimeUnixNano", "start_time_unix_nano")),
            json_time(_get(sp, "endTimeUnixNano", "end_time_unix_nano")),
            _enum(status.get("code"), "STATUS_CODE_", ("unset", "ok", "error")),
            str(status.get("message", "")),
            json_attrs(sp.get("attributes")),
            events,
            resource,
            scope,
        )
    )


def json_id(raw: Any, size: int) -> str:
    """Hex id from OTLP/JSON (hex per the spec; base64 as protobuf's JSON mapping writes it)."""
    if not isinstance(raw, str) or not raw:
        return ""
    if len(raw) == size * 2:
        try:
            b = bytes.fromhex(raw)
        except ValueError:
            b = b""
    else:
        try:
            b = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            b = b""
    if len(b) != size or not any(b):
        return ""
    return b.hex()


def json_int(raw: Any, lo: int = -(2**63), hi: int = 2**63 - 1) -> int:
    """An OTLP/JSON integer (a number, or a string as int64 values are written); 0 when it is
    not one or lies outside ``[lo, hi]`` (int64 by default): a value no protobuf field can
    hold is no value, and must not reach code that serializes 64-bit integers."""
    if isinstance(raw, bool):
        return 0
    if isinstance(raw, int):
        n = raw
    elif isinstance(raw, str):
        try:
            n = int(raw)
        except ValueError:
            return 0
    elif isinstance(raw, float) and math.isfinite(raw):
        n = int(raw)
    else:
        return 0
    return n if lo <= n <= hi else 0


def json_time(raw: Any) -> int:
    """A ``fixed64`` nanosecond timestamp of OTLP/JSON (0: absent or out of range)."""
    return json_int(raw, 0, 2**64 - 1)


def _enum(raw: Any, prefix: str, names: tuple[str, ...]) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw if 0 <= raw < len(names) else 0
    if isinstance(raw, str):
        name = raw.removeprefix(prefix).lower()
        if name in names:
            return names.index(name)
    return 0


def json_attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(kvs, list):
        return out
    for kv in kvs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out[kv["key"]] = json_any_value(kv.get("value"))
    return out


def json_any_value(v: Any) -> Any:
    """Convert an OTLP/JSON ``AnyValue`` object to a Python value."""
    if not isinstance(v, dict) or not v:
        return None
    if "stringValue" in v or "string_value" in v:
        return _get(v, "stringValue", "string_value")
    if "intValue" in v or "int_value" in v:
        raw = _get(v, "intValue", "int_value")
        n = json_int(raw)
        if n or raw in (0, "0"):
            return n
        # keep an unparseable value for type checks; one beyond int64 as text (no protobuf
        # field holds it, and 64-bit serializers refuse it)
        return str(raw) if isinstance(raw, int) else raw
    if "doubleValue" in v or "double_value" in v:
        raw = _get(v, "doubleValue", "double_value")
        if isinstance(raw, str):  # "NaN", "Infinity" and numbers as strings
            try:
                return float(raw)
            except ValueError:
                return raw
        return raw
    if "boolValue" in v or "bool_value" in v:
        return _get(v, "boolValue", "bool_value")
    if "arrayValue" in v or "array_value" in v:
        arr = _get(v, "arrayValue", "array_value") or {}
        vals = arr.get("values") if isinstance(arr, dict) else None
        return [json_any_value(x) for x in vals] if isinstance(vals, list) else []
    if "kvlistValue" in v or "kvlist_value" in v:
        kv = _get(v, "kvlistValue", "kvlist_value") or {}
        return json_attrs(kv.get("values") if isinstance(kv, dict) else None)
    if "bytesValue" in v or "bytes_value" in v:
        raw = _get(v, "bytesValue", "bytes_value")
        try:
            return base64.b64decode(raw) if isinstance(raw, str) else None
        except (binascii.Error, ValueError):
            return None
    return None
