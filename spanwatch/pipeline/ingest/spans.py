"""The normalized record every later stage works on: one :class:`LlmSpan` per LLM-related span.

Whatever instrumentation produced a span (OpenTelemetry GenAI conventions, OpenLLMetry,
OpenInference, vLLM, LoongSuite, LiteLLM), it becomes this one typed record with explicit units:
durations in seconds, timestamps in Unix nanoseconds, token counts as exact integers. A value
that is unknown is ``None``, never ``0``. What was wrong with the source span is listed in
``issues`` (a span that can be normalized partly is kept).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

# operations that are LLM calls (the GenAI conventions' gen_ai.operation.name values): each
# one's tokens count once (pipeline/tokens/burn.py counted_calls)
LLM_OPERATIONS = frozenset(
    {"chat", "text_completion", "embeddings", "generate_content", "inference"}
)


class Layer(StrEnum):
    """Where in the request path a span was produced."""

    GATEWAY = "gateway"
    APP = "app"
    AGENT = "agent"
    TOOL = "tool"
    MODEL_SERVER = "model-server"
    DEPENDENCY = "dependency"  # a client call to Redis, a database, HTTP/RPC or messaging
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ContentRef:
    """Where a prompt or completion of a span can be found (never the content itself).

    ``kind`` is ``inline`` (an attribute or event attribute named by ``location``),
    ``external`` (a URI from a ``*_ref`` attribute) or ``chunk`` (pieces of payload
    ``location`` carried as ``gen_ai.content.chunk`` events). ``size`` is in characters for
    inline content and 0 when unknown.
    """

    role: str
    kind: str
    location: str
    size: int


@dataclass(slots=True)
class LlmSpan:
    """One normalized LLM-related span. Field units are in the names or documented here."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    layer: Layer
    operation: str
    span_kind: str
    start_ns: int
    end_ns: int
    duration_s: float | None
    status: str  # "ok" | "error" | "unset"
    error_type: str | None = None
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    request_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None  # a subset of input_tokens
    cache_creation_tokens: int | None = None  # a subset of input_tokens
    reasoning_tokens: int | None = None  # a subset of output_tokens
    ttft_s: float | None = None
    tpot_s: float | None = None
    queue_s: float | None = None
    prefill_s: float | None = None
    decode_s: float | None = None
    # model server: scheduled to last token (vLLM, SGLang); engine-specific splits of it
    inference_s: float | None = None
    forward_s: float | None = None  # vLLM: forward passes, across workers
    execute_s: float | None = None  # vLLM: model execute (forward, sync, sampling)
    preemptions: int | None = None  # times the engine preempted (vLLM) or retracted (SGLang) it
    server_e2e_s: float | None = None
    finish_reasons: tuple[str, ...] = ()
    user_id: str | None = None
    session_id: str | None = None
    agent_name: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    tool_args_hash: str | None = None
    streaming: bool | None = None
    reported_cost: float | None = None  # cost the instrumentation reported (LiteLLM: USD)
    content: tuple[ContentRef, ...] = ()
    instrumentation: str = ""  # instrumentation scope name
    issues: tuple[str, ...] = ()
    # a client span reporting the same call (pipeline.ingest.dedupe)
    duplicate_of: str | None = None
    # layer "dependency": "<system> <address>[/<namespace>]", e.g. "redis cache:6379/0"
    dependency: str | None = None
    # a workflow node: "<node type>: <title>" ("llm: Answer", "code: Clean input" in Dify;
    # "langgraph: retrieve" for a LangGraph node)
    node: str | None = None
    # a model-server span: the service of the client call it served (pipeline.ingest.inherit)
    caller_service: str | None = None

    @property
    def model(self) -> str | None:
        """The model that served the request: response model, else the requested one."""
        return self.response_model or self.request_model

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with every field (``None`` for unknown); schema in docs/SCHEMAS.md."""
        out = {name: getattr(self, name) for name in _FIELD_NAMES}
        out["layer"] = self.layer.value
        out["content"] = [
            {"role": c.role, "kind": c.kind, "location": c.location, "size": c.size}
            for c in self.content
        ]
        out["finish_reasons"] = list(self.finish_reasons)
        out["issues"] = list(self.issues)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LlmSpan:
        """Inverse of :meth:`to_dict` (used by consumers of ``spanwatch.spans``)."""
        kw = {name: d[name] for name in _FIELD_NAMES if name in d}
        kw["layer"] = Layer(d["layer"])
        kw["content"] = tuple(ContentRef(**c) for c in d.get("content", ()))
        kw["finish_reasons"] = tuple(d.get("finish_reasons", ()))
        kw["issues"] = tuple(d.get("issues", ()))
        return cls(**kw)


_FIELD_NAMES = tuple(f.name for f in fields(LlmSpan))
