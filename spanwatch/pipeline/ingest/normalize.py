"""Normalization: a decoded :class:`~pipeline.ingest.otlp.SpanView` becomes one :class:`LlmSpan`.

Reads :data:`pipeline.ingest.conventions.FIELDS` (first source present wins), converts units to
seconds, validates types and ranges, and derives what no attribute says directly: the layer,
the operation, TTFT from first-token events and TPOT. Problems are recorded in
``LlmSpan.issues``; a bad attribute costs that field, never the span.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import conventions as cv
from .otlp import SPAN_KIND_NAMES, SpanView
from .spans import ContentRef, Layer, LlmSpan

_N = TypeVar("_N", int, float)
MAX_TOKENS = 10**10  # a count above this is not a real token count
SERVER_KIND = 2

MAX_DURATION_S = 6 * 3600.0  # a span longer than this has a bad timestamp (flagged, no duration)


@dataclass(frozen=True)
class NormalizeOptions:
    """Knobs of normalization (from the ``normalize`` section of the configuration)."""

    # (service.name glob, layer) pairs, checked first in order (e.g. ("*-gw", Layer.GATEWAY))
    layer_overrides: tuple[tuple[str, Layer], ...] = ()
    # keep spans with no LLM attributes (and no dependency call) as layer "other"
    keep_non_llm: bool = False
    # client calls to Redis, databases, vector databases, HTTP, RPC, messaging: layer "dependency"
    dependencies: bool = True
    # a span longer than this is "absurd": its duration is dropped and the span flagged
    max_duration_s: float = MAX_DURATION_S
    # a framework span repeating a client span's call is marked and not counted again
    dedupe_instrumentations: bool = True
    # model-server service glob -> model, for engines whose spans name none
    # (pipeline.ingest.inherit)
    engine_models: tuple[tuple[str, str], ...] = ()
    gateway_services: tuple[str, ...] = (
        "*gateway*",
        "*higress*",
        "*litellm*",
        "*one-api*",
        "*apisix*",
        "*kong*",
    )
    model_server_services: tuple[str, ...] = (
        "*vllm*",
        "*sglang*",
        "*tgi*",
        "*triton*",
        "*lmdeploy*",
        "*llama-server*",
    )
    # service name -> layer implied by the name (or None); filled lazily, bounded
    _service_layers: dict[str, Layer | None] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )


# What was wrong with a span (kept in ``LlmSpan.issues``).
_Issues = list[str]


def _as_str(v: Any, key: str, issues: _Issues) -> str | None:
    if isinstance(v, str):
        return v or None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        issues.append(f"coerced:{key}")
        return str(v)
    issues.append(f"bad_type:{key}")
    return None


def _from_text(text: str, parse: Callable[[str], _N], key: str, issues: _Issues) -> _N | None:
    """A number sent as a string: accepted, and recorded as coerced."""
    try:
        value = parse(text.strip())
    except ValueError:
        issues.append(f"bad_type:{key}")
        return None
    issues.append(f"coerced:{key}")
    return value


def _as_int(v: Any, key: str, issues: _Issues) -> int | None:
    if isinstance(v, bool):
        issues.append(f"bad_type:{key}")
        return None
    if isinstance(v, int):
        n = v
    elif isinstance(v, float) and v.is_integer():
        n = int(v)
    elif isinstance(v, str):
        parsed = _from_text(v, int, key, issues)
        if parsed is None:
            return None
        n = parsed
    else:
        issues.append(f"bad_type:{key}")
        return None
    if n < 0 or n > MAX_TOKENS:
        issues.append(f"out_of_range:{key}")
        return None
    return n


def _as_float(v: Any, key: str, issues: _Issues) -> float | None:
    if isinstance(v, bool):
        issues.append(f"bad_type:{key}")
        return None
    if isinstance(v, (int, float)):
        x = float(v)
    elif isinstance(v, str):
        parsed_x = _from_text(v, float, key, issues)
        if parsed_x is None:
            return None
        x = parsed_x
    else:
        issues.append(f"bad_type:{key}")
        return None
    if not math.isfinite(x) or x < 0:
        issues.append(f"out_of_range:{key}")
        return None
    return x


def _as_seconds(v: Any, src: cv.Source, issues: _Issues) -> float | None:
    unit = src.unit
    if src.key == "gen_ai.response.time_to_first_token" and isinstance(v, float):
        unit = "s"  # the deprecated GenAI attribute is a double in seconds; LoongSuite's is int ns
    x = _as_float(v, src.key, issues)
    return None if x is None else x * cv.UNIT_TO_SECONDS[unit]


def _as_bool(v: Any, key: str, issues: _Issues) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        issues.append(f"coerced:{key}")
        return v.lower() == "true"
    issues.append(f"bad_type:{key}")
    return None


def _as_strlist(v: Any, key: str, issues: _Issues) -> tuple[str, ...] | None:
    if isinstance(v, str) and v.startswith("[") and v.endswith("]"):
        try:  # a list written as JSON text (vLLM: '["stop"]')
            v = json.loads(v)
        except json.JSONDecodeError:
            issues.append(f"bad_json:{key}")
            return None
    if isinstance(v, str):
        return (v,) if v else None
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v) or None
    issues.append(f"bad_type:{key}")
    return None


def _as_raw(v: Any, key: str, issues: _Issues) -> Any:
    return v


_CONVERTERS: dict[str, Callable[[Any, str, _Issues], Any]] = {
    "str": _as_str,
    "int": _as_int,
    "float": _as_float,
    "bool": _as_bool,
    "strlist": _as_strlist,
    "raw": _as_raw,
}
# attribute key -> (field, kind, priority, source): one dict lookup per attribute instead of
# one per candidate source (a span has ~10 attributes; the table has ~90 sources).
_INDEX: dict[str, tuple[str, str, int, cv.Source]] = {
    src.key: (name, cv.FIELD_TYPES[name], prio, src)
    for name, sources in cv.FIELDS.items()
    for prio, src in enumerate(sources)
    if not src.member
}
# JSON-object attributes read member by member (llm.invocation_parameters: model, stream)
_MEMBERS: dict[str, list[tuple[str, str, int, cv.Source]]] = {}
for _name, _sources in cv.FIELDS.items():
    for _prio, _src in enumerate(_sources):
        if _src.member:
            _MEMBERS.setdefault(_src.key, []).append((_name, cv.FIELD_TYPES[_name], _prio, _src))
# Span-kind markers ride along in the same pass, under their own key.
_INDEX.update({src.key: (src.key, "str", 0, src) for src in cv.KIND_MARKERS})


def _convert(kind: str, v: Any, src: cv.Source, issues: _Issues) -> Any:
    # Fast paths for well-typed values (almost all of them); the converters handle the rest.
    t = type(v)
    if kind == "str":
        if t is str and v:
            return v
    elif kind == "int":
        if t is int and 0 <= v <= MAX_TOKENS:
            return v
    elif kind == "seconds":
        if t is float and src.unit == "s" and v >= 0.0 and v != _INF:
            return v
        return _as_seconds(v, src, issues)
    return _CONVERTERS[kind](v, src.key, issues)


_INF = float("inf")
_CONTENT_PREFIX_TUPLE = tuple(p for p, _ in cv.CONTENT_PREFIXES)


_IGNORED: tuple[Any, ...] = ()
# attribute key -> (index entry or None, content kind or None); attribute keys repeat across
# spans, so each distinct key is classified once. Bounded: cleared when it grows too large.
_KEY_CLASS: dict[str, tuple[Any, ...]] = {}
_KEY_CLASS_MAX = 100_000


def _classify(key: str) -> tuple[Any, ...]:
    entry = _INDEX.get(key)
    role = cv.CONTENT_ATTRS.get(key)
    if role is not None:
        content: str | None = "attr"
    elif key.endswith("_ref") or key.startswith(_CONTENT_PREFIX_TUPLE):
        content = "other"
    else:
        content = None
    if entry is None and content is None:
        return _IGNORED
    if len(_KEY_CLASS) >= _KEY_CLASS_MAX:
        _KEY_CLASS.clear()
    return (entry, content)


def extract_fields(
    attrs: Mapping[str, Any], issues: _Issues, content: list[ContentRef] | None = None
) -> dict[str, Any]:
    """Fill every mapped field from ``attrs``; the first valid source (table order) wins.

    One pass over the attributes; inline content references are collected into ``content``
    in the same pass.
    """
    out: dict[str, Any] = {}
    prios: dict[str, int] = {}
    classes = _KEY_CLASS
    for key, v in attrs.items():
        cls = classes.get(key)
        if cls is None:
            cls = classes[key] = _classify(key)
        if cls is _IGNORED or v is None:
            continue
        entry, content_kind = cls
        if entry is not None:
            name, kind, prio, src = entry
            held = prios.get(name)
            if held is None or prio < held:
                t = type(v)
                if (kind == "int" and t is int and 0 <= v <= MAX_TOKENS) or (
                    kind == "str" and t is str and v
                ):
                    conv = v  # the common case, inline
                else:
                    conv = _convert(kind, v, src, issues)
                if conv is not None:  # a bad value leaves the field to the next valid source
                    out[name] = conv
                    prios[name] = prio
        if content_kind is not None and content is not None:
            if content_kind == "attr":
                content.append(
                    ContentRef(
                        cv.CONTENT_ATTRS[key], "inline", key, len(v) if type(v) is str else 0
                    )
                )
            else:
                ref = _content_ref(key, v)
                if ref is not None:
                    content.append(ref)
    for key, reads in _MEMBERS.items():
        raw = attrs.get(key)
        if raw is not None and any(f not in prios or p < prios[f] for f, _, p, _ in reads):
            _read_members(raw, key, reads, out, prios, issues)
    return out


def _read_members(
    raw: Any,
    key: str,
    reads: list[tuple[str, str, int, cv.Source]],
    out: dict[str, Any],
    prios: dict[str, int],
    issues: _Issues,
) -> None:
    """Fields read from members of a JSON-object attribute (parsed once), each only where no
    source of higher priority gave it."""
    if not isinstance(raw, str):
        issues.append(f"bad_type:{key}")
        return
    if not any(f'"{src.member}"' in raw for _, _, _, src in reads):
        return
    try:
        params = json.loads(raw)
    except json.JSONDecodeError:
        issues.append(f"bad_json:{key}")
        return
    if not isinstance(params, dict):
        issues.append(f"bad_type:{key}")
        return
    for name, kind, prio, src in reads:
        held = prios.get(name)
        value = params.get(src.member)
        if value is None or (held is not None and held <= prio):
            continue
        conv = _convert(kind, value, src, issues)
        if conv is not None:
            out[name] = conv
            prios[name] = prio


def _content_ref(key: str, value: Any) -> ContentRef | None:
    if key.endswith("_ref"):
        base = key[:-4]
        role = cv.CONTENT_ATTRS.get(base) or ("output" if "output" in base else "input")
        return ContentRef(role, "external", str(value), 0)
    for prefix, role in cv.CONTENT_PREFIXES:
        if key.startswith(prefix) and key.endswith(("content", "contents", ".text")):
            return ContentRef(role, "inline", key, len(value) if isinstance(value, str) else 0)
    return None


def is_llm_related(attrs: Mapping[str, Any]) -> bool:
    """True when any attribute belongs to an LLM convention."""
    prefixes = cv.LLM_PREFIXES
    return any(k.startswith(prefixes) for k in attrs)


def _kind_marker(found: dict[str, Any]) -> str:
    """The first span-kind marker present (popped from ``found``), upper-cased."""
    marker = ""
    for src in cv.KIND_MARKERS:
        v = found.pop(src.key, None)
        if v and not marker:
            marker = "TOOL" if src.key == "mcp.method.name" and v == "tools/call" else v.upper()
    return marker


def _matches(service: str, patterns: tuple[str, ...]) -> bool:
    s = service.lower()
    return any(fnmatch.fnmatchcase(s, p) for p in patterns)


def _service_layer(service: str, opts: NormalizeOptions) -> Layer | None:
    """Layer implied by the service name alone (memoized per options object)."""
    cache = opts._service_layers
    try:
        return cache[service]
    except KeyError:
        pass
    if len(cache) >= 4096:
        cache.clear()
    layer = cache[service] = _service_layer_uncached(service, opts)
    return layer


def _service_layer_uncached(service: str, opts: NormalizeOptions) -> Layer | None:
    """Layer implied by the service name alone (configured overrides, then name patterns)."""
    for pattern, layer in opts.layer_overrides:
        if fnmatch.fnmatchcase(service, pattern):
            return Layer(layer)
    # Who emitted the span says more than what it is about: a gateway span of an agent
    # request is still gateway time.
    if _matches(service, opts.gateway_services):
        return Layer.GATEWAY
    if _matches(service, opts.model_server_services):
        return Layer.MODEL_SERVER
    return None


def derive_layer(
    view: SpanView, service: str, operation: str, marker: str, opts: NormalizeOptions
) -> Layer:
    """Layer from configuration, service name, span-kind markers, operation and attributes."""
    by_service = _service_layer(service, opts)
    if by_service is not None:
        return by_service
    attrs = view.attrs
    if (
        "gen_ai.latency.e2e" in attrs
        or "gen_ai.latency.time_in_queue" in attrs
        or view.scope.startswith(("vllm", "sglang"))
    ):
        return Layer.MODEL_SERVER
    if operation == "execute_tool" or marker == "TOOL" or "mcp.method.name" in attrs:
        return Layer.TOOL
    if operation in ("invoke_agent", "create_agent") or marker == "AGENT":
        return Layer.AGENT
    if not marker and not operation and not is_llm_related(attrs):
        return Layer.OTHER
    return Layer.APP


def _operation(op: str | None, marker: str) -> str:
    if op:
        op = op.lower()
        return cv.OPERATION_ALIASES.get(op, op)
    if marker:
        return cv.KIND_TO_OPERATION.get(marker, marker.lower())
    return ""


def _event_content_refs(view: SpanView, refs: list[ContentRef]) -> None:
    """Content carried in span events: deprecated message events and chunk events."""
    seen_chunks: set[str] = set()
    for ev in view.events:
        erole = cv.CONTENT_EVENTS.get(ev.name)
        if erole is not None:
            size = sum(len(v) for v in ev.attrs.values() if isinstance(v, str))
            refs.append(ContentRef(erole, "inline", f"event:{ev.name}", size))
        elif ev.name == cv.CHUNK_EVENT:
            pid = ev.attrs.get(cv.CHUNK_PAYLOAD_ID)
            if isinstance(pid, str) and pid not in seen_chunks:
                seen_chunks.add(pid)
                crole = ev.attrs.get(cv.CHUNK_ROLE)
                role = crole if isinstance(crole, str) else "input"
                refs.append(ContentRef(role, "chunk", pid, 0))


def _ttft_from_events(view: SpanView) -> float | None:
    times = [
        ev.time_ns
        for ev in view.events
        if ev.name in cv.FIRST_TOKEN_EVENTS and ev.time_ns >= view.start_ns > 0
    ]
    return (min(times) - view.start_ns) / 1e9 if times else None


MAX_NODE_CHARS = 96


def workflow_node(view: SpanView) -> str | None:
    """``"<node type>: <title>"`` of a workflow node span, else None: Dify's node spans
    (``node.type``, the span named after the node's title) and LangGraph's nodes as
    OpenInference records them (``metadata`` JSON with ``langgraph_node``)."""
    attrs = view.attrs
    ntype = attrs.get(cv.NODE_TYPE)
    if isinstance(ntype, str) and ntype:
        return f"{ntype}: {view.name}"[:MAX_NODE_CHARS]
    meta = attrs.get(cv.LANGGRAPH_METADATA)
    if isinstance(meta, str) and cv.LANGGRAPH_NODE in meta:
        try:
            doc = json.loads(meta)
        except ValueError:
            return None
        name = doc.get(cv.LANGGRAPH_NODE) if isinstance(doc, dict) else None
        if isinstance(name, str) and name and name == view.name:  # the node's own span
            return f"langgraph: {name}"[:MAX_NODE_CHARS]
    return None


def _preemptions(view: SpanView) -> int | None:
    """Preemptions of a model-server request: the highest ``num_preemptions`` of vLLM's
    journey events, or SGLang's ``retract`` events counted; None when neither is there."""
    n: int | None = None
    for ev in view.events:
        if ev.name.startswith(cv.JOURNEY_EVENT_PREFIX):
            v = ev.attrs.get(cv.JOURNEY_PREEMPTIONS)
            if type(v) is int and v >= 0:
                n = max(n or 0, v)
        elif ev.name == cv.RETRACT_EVENT:
            n = (n or 0) + 1
    return n


def _error_type(view: SpanView, et: str | None) -> str | None:
    if et:
        return str(et)
    for ev in view.events:
        if ev.name == "exception":
            t = ev.attrs.get("exception.type")
            if isinstance(t, str) and t:
                return t
    for key in _STATUS_CODE_KEYS:  # what error.type holds for HTTP and gRPC by the conventions
        code = view.attrs.get(key)
        if isinstance(code, int) and not isinstance(code, bool) and code > 0:
            return str(code)
    return "_OTHER"


_STATUS_CODE_KEYS = ("http.response.status_code", "http.status_code", "rpc.grpc.status_code")


def _args_hash(args: Any) -> str | None:
    if args is None:
        return None
    text = args if isinstance(args, str) else json.dumps(args, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).hexdigest()


def normalize(view: SpanView, opts: NormalizeOptions | None = None) -> LlmSpan | None:
    """One span view to one record; ``None`` when the span is not LLM-related (counted)."""
    opts = opts or _DEFAULT
    attrs = view.attrs
    if cv.CHUNK_TARGET in attrs:
        return None  # a carrier of chunked-payload pieces, not an operation (counted skipped)
    issues: _Issues = []
    # ``found`` is keyed by LlmSpan field names, so it becomes the record's keyword arguments.
    content: list[ContentRef] = []
    found = extract_fields(attrs, issues, content)
    marker = _kind_marker(found)
    service = view.resource.get("service.name")
    if not isinstance(service, str) or not service:
        issues.append("missing:service.name")
        service = "unknown_service"
    operation = _operation(found.pop("operation", None), marker)
    dep = (
        dependency_of(view)
        if opts.dependencies and not operation and not found.keys() & _LLM_FIELDS
        else None
    )
    if dep is not None:
        layer = Layer.DEPENDENCY
        found["dependency"], operation = dep
    else:
        layer = derive_layer(view, service, operation, marker, opts)
    node = workflow_node(view)
    if node is not None:
        found["node"] = node
        if layer is Layer.OTHER:  # a node of an older Dify, with no GenAI attribute
            layer, operation = Layer.APP, operation or "task"
    if layer is Layer.OTHER and not opts.keep_non_llm:
        return None
    if not operation:
        operation = (
            "inference"
            if layer is Layer.MODEL_SERVER
            else ("chat" if "request_model" in found or "response_model" in found else "unknown")
        )

    duration = _duration(view, opts, issues)
    ttft = found.get("ttft_s")
    if ttft is None:
        ttft = _ttft_from_events(view)
    limit = found.get("server_e2e_s") or duration
    if ttft is not None and limit is not None and ttft > limit * 1.001 + 1e-3:
        issues.append("ttft_exceeds_duration")
        ttft = None
    found["ttft_s"] = ttft
    streaming = found.get("streaming")
    if streaming is None and any(ev.name in cv.STREAM_CHUNK_EVENTS for ev in view.events):
        streaming = found["streaming"] = True
    output_tokens = found.get("output_tokens")
    streamed = streaming is True or (streaming is None and ttft is not None)
    if streamed and ttft is not None and limit is not None and output_tokens and output_tokens > 1:
        found["tpot_s"] = max(limit - ttft, 0.0) / (output_tokens - 1)
    if "input_tokens" in found or "output_tokens" in found:
        _check_token_subsets(found, issues)
    status = _STATUS[view.status_code] if 0 <= view.status_code <= 2 else "unset"
    tool_args = found.pop("tool_arguments", None)
    error_type = found.pop("error_type", None)
    if status == "error" or error_type:
        found["error_type"] = _error_type(view, error_type)
    if layer is Layer.TOOL:
        found["tool_args_hash"] = _args_hash(tool_args)
        if "tool_name" not in found:
            found["tool_name"] = _traceloop_entity(attrs)
    if view.events:
        _event_content_refs(view, content)
        preemptions = _preemptions(view)
        if preemptions is not None:
            found["preemptions"] = preemptions
    chunked = attrs.get(cv.CHUNKED_PAYLOADS)
    if isinstance(chunked, list):
        for pid in chunked:
            if isinstance(pid, str):
                key = pid.partition(":")[2]
                content.append(ContentRef(cv.CONTENT_ATTRS.get(key, "input"), "chunk", pid, 0))
    if content:
        found["content"] = tuple(content)
    if issues:
        found["issues"] = tuple(issues)
    return LlmSpan(
        view.trace_id,
        view.span_id,
        view.parent_span_id,
        view.name,
        service,
        layer,
        operation,
        SPAN_KIND_NAMES[view.kind] if 0 <= view.kind < 6 else "unspecified",
        view.start_ns,
        view.end_ns,
        duration,
        status,
        instrumentation=view.scope,
        **found,
    )


_STATUS = ("unset", "ok", "error")
# fields that make a span an LLM call (or tool or agent step), never a dependency call
_LLM_FIELDS = frozenset(
    {"provider", "request_model", "response_model", "input_tokens", "output_tokens", "tool_name"}
)
MAX_DEPENDENCY_CHARS = 128


def _first(attrs: Mapping[str, Any], sources: tuple[cv.Source, ...]) -> tuple[str, Any] | None:
    """(key, value) of the first source present with a non-empty scalar value."""
    for src in sources:
        v = attrs.get(src.key)
        if isinstance(v, bool) or v is None or v == "":
            continue
        if isinstance(v, str | int | float):
            return src.key, v
    return None


def _url_host(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return f"{host}:{port}" if port else host


def dependency_of(view: SpanView) -> tuple[str, str] | None:
    """``(dependency, operation)`` of a client call to a dependency, else None.

    The dependency is ``"<system> <address>[/<namespace>]"`` (``"redis cache:6379/0"``,
    ``"postgresql db:5432/orders"``, ``"qdrant qdrant:6333"``, ``"http api.example.com"``),
    read from the current semantic-convention names first, then the older ones
    (:data:`pipeline.ingest.conventions.DEPENDENCY_SYSTEMS` and the tables after it). Only client
    and producer spans call a dependency; an HTTP or RPC server span is the callee's.
    """
    if view.kind not in cv.DEPENDENCY_SPAN_KINDS:
        return None
    attrs = view.attrs
    system = _first(attrs, cv.DEPENDENCY_SYSTEMS)
    if system is None:
        return None
    key, value = system
    name = "http" if key in cv.HTTP_SYSTEM_KEYS else str(value).strip().lower()
    address: str | None = None
    host = _first(attrs, cv.DEPENDENCY_ADDRESS)
    if host is not None:
        hkey, hval = host
        address = _url_host(str(hval)) if hkey in ("url.full", "http.url") else str(hval)
        port = _first(attrs, cv.DEPENDENCY_PORT)
        if address and port is not None and hkey not in ("url.full", "http.url"):
            address = f"{address}:{port[1]}"
    # a Redis database index is no part of the server's name: the stable conventions leave it
    # out (db.namespace is unset for index 0), the older ones wrote db.redis.database_index,
    # and one server must have one name in a fleet that mixes both
    ns = _first(attrs, cv.DEPENDENCY_NAMESPACE) if name not in cv.NO_NAMESPACE else None
    target = address or ""
    if ns is not None:
        target = f"{target}/{ns[1]}" if target else str(ns[1])
    dependency = f"{name} {target}" if target else name
    op = _first(attrs, cv.DEPENDENCY_OPERATION)
    operation = str(op[1]).strip()[:64] if op is not None else ""
    if not operation and (stmt := _first(attrs, cv.DEPENDENCY_STATEMENT)) is not None:
        word = _KEYWORD.match(str(stmt[1]))
        operation = word.group(1).upper() if word else ""
    if not operation:  # OpenLLMetry's vector databases: the operation is in the span name
        operation = _name_operation(view.name, name)
    return dependency[:MAX_DEPENDENCY_CHARS], operation or "call"


def _name_operation(span_name: str, system: str) -> str:
    """``qdrant.search`` -> ``search``, ``chroma.query`` -> ``query``: a span named
    ``<system>.<operation>`` (OpenLLMetry's vector-database spans carry no db.operation)."""
    head, dot, op = span_name.strip().partition(".")
    if dot and head.lower() == system and _OPERATION.fullmatch(op):
        return op.lower()
    return ""


_OPERATION = re.compile(r"[A-Za-z][A-Za-z_]{0,31}")


_KEYWORD = re.compile(r"\s*([A-Za-z][A-Za-z_]{0,23})\b")


def _traceloop_entity(attrs: Mapping[str, Any]) -> str | None:
    name = attrs.get("traceloop.entity.name")
    return name if isinstance(name, str) and name else None


def _duration(view: SpanView, opts: NormalizeOptions, issues: _Issues) -> float | None:
    if view.start_ns <= 0 or view.end_ns <= 0:
        issues.append("missing:timestamp")
        return None
    d = (view.end_ns - view.start_ns) / 1e9
    if d < 0:
        issues.append("end_before_start")
        return 0.0
    if d > opts.max_duration_s:
        issues.append("absurd_duration")
        return None
    return d


def _check_token_subsets(found: dict[str, Any], issues: _Issues) -> None:
    """Cached tokens are part of input, reasoning part of output: flag counts that cannot be."""
    inp = found.get("input_tokens")
    if inp is not None:
        cached = found.get("cache_read_tokens", 0) + found.get("cache_creation_tokens", 0)
        if cached > inp:
            issues.append("cached_exceeds_input")
    out = found.get("output_tokens")
    if out is not None and found.get("reasoning_tokens", 0) > out:
        issues.append("reasoning_exceeds_output")
    total = found.get("total_tokens")
    if total is not None and inp is not None and out is not None and total < inp + out:
        issues.append("total_below_input_plus_output")


_DEFAULT = NormalizeOptions()
