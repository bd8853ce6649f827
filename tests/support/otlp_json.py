"""Re-encode OTLP protobuf as the JSON forms collectors write (for encoding tests)."""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> Any:
    """protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants hex ids."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in _ID_KEYS and isinstance(v, str):
                out[k] = base64.b64decode(v).hex()
            else:
                out[k] = _hex_ids(v)
        return out
    if isinstance(node, list):
        return [_hex_ids(x) for x in node]
    return node


def otlp_json(data: TracesData) -> bytes:
    """OTLP/JSON as the Go collector's ``otlp_json`` encoding writes it."""
    return json.dumps(_hex_ids(MessageToDict(data))).encode()


def rotel_json(data: TracesData) -> bytes:
    """Rotel's JSON: a bare array of ResourceSpans."""
    return json.dumps(_hex_ids(MessageToDict(data))["resourceSpans"]).encode()


def per_span_messages(data: TracesData) -> list[TracesData]:
    """Split a batch into one TracesData per span (some exporters write it that way)."""
    out = []
    for rs in data.resource_spans:
        for ss in rs.scope_spans:
            for sp in ss.spans:
                one = TracesData()
                r = one.resource_spans.add()
                r.resource.CopyFrom(rs.resource)
                s = r.scope_spans.add()
                s.scope.CopyFrom(ss.scope)
                s.spans.add().CopyFrom(sp)
                out.append(one)
    return out
