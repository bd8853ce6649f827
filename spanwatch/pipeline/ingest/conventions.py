"""The attribute mapping: which source attribute fills which
:class:`~pipeline.ingest.spans.LlmSpan` field.

This table is the single source of truth: :mod:`pipeline.ingest.normalize` reads it and
``docs/ATTRIBUTE-MAPPING.md`` is generated from it (``spanwatch normalize --mapping``; a test
keeps the two in sync). For each field the first source present on a span wins, so current
names come before deprecated ones.
"""

from __future__ import annotations

from dataclasses import dataclass

GENAI = "OTel GenAI"
GENAI_DEP = "OTel GenAI (deprecated)"
OTEL = "OTel general"
OLLM = "OpenLLMetry / Traceloop"
OINF = "OpenInference / Phoenix"
VLLM = "vLLM"
LOONG = "LoongSuite / ARMS"
LITELLM = "LiteLLM"


@dataclass(frozen=True, slots=True)
class Source:
    """One source attribute for a field. ``unit`` converts durations to seconds."""

    key: str
    convention: str
    unit: str = ""  # "s", "ms" or "ns" for durations; "" otherwise
    note: str = ""
    member: str = ""  # the attribute is a JSON object: read this member of it


UNIT_TO_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}

# kind of value each field holds: str, int (token count), seconds, bool, strlist, float
FIELD_TYPES: dict[str, str] = {}
FIELDS: dict[str, tuple[Source, ...]] = {}


def _field(name: str, kind: str, *sources: Source) -> None:
    FIELD_TYPES[name] = kind
    FIELDS[name] = sources


S = Source
_field(
    "operation",
    "str",
    S("gen_ai.operation.name", GENAI),
    S("llm.request.type", OLLM, note="chat, completion (-> text_completion), embedding"),
)
_field(
    "provider",
    "str",
    S("gen_ai.provider.name", GENAI),
    S("gen_ai.system", GENAI_DEP, note="also OpenLLMetry, LiteLLM"),
    S("llm.provider", OINF),
    S("llm.system", OINF),
)
_field(
    "request_model",
    "str",
    S("gen_ai.request.model", GENAI, note="also OpenLLMetry, vLLM, LoongSuite, LiteLLM"),
    S("llm.request.model", OLLM, note="old OpenLLMetry"),
    S("gen_ai.model_name", LOONG),
    S(
        "llm.invocation_parameters",
        OINF,
        note='JSON object; its "model" member (a failed call has no other model attribute)',
        member="model",
    ),
)
_field(
    "response_model",
    "str",
    S("gen_ai.response.model", GENAI),
    S("llm.response.model", OLLM, note="old OpenLLMetry"),
    S("llm.model_name", OINF),
)
_field("response_id", "str", S("gen_ai.response.id", GENAI))
_field("request_id", "str", S("gen_ai.request.id", VLLM))
_field(
    "input_tokens",
    "int",
    S("gen_ai.usage.input_tokens", GENAI),
    S("gen_ai.usage.prompt_tokens", GENAI_DEP, note="also OpenLLMetry, vLLM"),
    S("llm.token_count.prompt", OINF),
    S("llm.usage.prompt_tokens", OLLM, note="old OpenLLMetry"),
)
_field(
    "output_tokens",
    "int",
    S("gen_ai.usage.output_tokens", GENAI),
    S("gen_ai.usage.completion_tokens", GENAI_DEP, note="also OpenLLMetry, vLLM"),
    S("llm.token_count.completion", OINF),
    S("llm.usage.completion_tokens", OLLM, note="old OpenLLMetry"),
)
_field(
    "total_tokens",
    "int",
    S("gen_ai.usage.total_tokens", LOONG, note="also LiteLLM; checked, never summed"),
    S("llm.usage.total_tokens", OLLM),
    S("llm.token_count.total", OINF),
)
_field(
    "cache_read_tokens",
    "int",
    S("gen_ai.usage.cache_read.input_tokens", GENAI),
    S("gen_ai.usage.cache_read_input_tokens", OLLM, note="deprecated GenAI name too"),
    S("llm.token_count.prompt_details.cache_read", OINF),
    S("gen_ai.usage.input_tokens.cached", OTEL, note="Sentry alias"),
)
_field(
    "cache_creation_tokens",
    "int",
    S("gen_ai.usage.cache_creation.input_tokens", GENAI),
    S("gen_ai.usage.cache_write.input_tokens", GENAI, note="later name of the same count"),
    S("gen_ai.usage.cache_creation_input_tokens", OLLM, note="deprecated GenAI name too"),
    S("llm.token_count.prompt_details.cache_write", OINF),
)
_field(
    "reasoning_tokens",
    "int",
    S("gen_ai.usage.reasoning.output_tokens", GENAI),
    S("gen_ai.usage.reasoning_tokens", OLLM),
    S("llm.token_count.completion_details.reasoning", OINF),
)
_field(
    "ttft_s",
    "seconds",
    S("gen_ai.response.time_to_first_chunk", GENAI, "s"),
    S(
        "gen_ai.response.time_to_first_token",
        LOONG,
        "ns",
        note="integer: nanoseconds (LoongSuite); double: seconds (deprecated GenAI name, "
        "LiteLLM and others)",
    ),
    S("gen_ai.latency.time_to_first_token", VLLM, "s"),
    S("gen_ai.server.time_to_first_token", GENAI, "s", note="server-side TTFT"),
    S("gen_ai.response.time_to_first_token_ms", OTEL, "ms", note="seen in custom instrumentation"),
)
_field(
    "queue_s",
    "seconds",
    S("gen_ai.latency.time_in_queue", VLLM, "s"),
    S("gen_ai.latency.time_in_scheduler", VLLM, "s", note="older vLLM"),
)
_field(
    "prefill_s",
    "seconds",
    S("gen_ai.latency.time_in_model_prefill", VLLM, "s", note="also SGLang"),
)
_field(
    "decode_s", "seconds", S("gen_ai.latency.time_in_model_decode", VLLM, "s", note="also SGLang")
)
_field("server_e2e_s", "seconds", S("gen_ai.latency.e2e", VLLM, "s", note="also SGLang"))
_field(
    "inference_s",
    "seconds",
    S(
        "gen_ai.latency.time_in_model_inference",
        VLLM,
        "s",
        note="scheduled to last token; also SGLang",
    ),
)
_field("forward_s", "seconds", S("gen_ai.latency.time_in_model_forward", VLLM, "s"))
_field("execute_s", "seconds", S("gen_ai.latency.time_in_model_execute", VLLM, "s"))
_field(
    "finish_reasons",
    "strlist",
    S("gen_ai.response.finish_reasons", GENAI),
    S("llm.response.finish_reason", OLLM),
    S("gen_ai.completion.0.finish_reason", OLLM),
)
_field(
    "user_id",
    "str",
    S("user.id", OTEL, note="also OpenInference"),
    S("gen_ai.user.id", LOONG),
    S("traceloop.association.properties.user_id", OLLM),
    S("enduser.id", OTEL, note="deprecated"),
    S("langfuse.user.id", OTEL, note="Langfuse"),
)
_field(
    "session_id",
    "str",
    S("gen_ai.conversation.id", GENAI),
    S("session.id", OTEL, note="also OpenInference"),
    S("gen_ai.session.id", LOONG),
    S("traceloop.association.properties.session_id", OLLM),
    S("traceloop.association.properties.conversation_id", OLLM),
    S("langfuse.session.id", OTEL, note="Langfuse"),
)
_field("agent_name", "str", S("gen_ai.agent.name", GENAI), S("agent.name", OINF))
_field(
    "tool_name",
    "str",
    S("gen_ai.tool.name", GENAI, note="also MCP tool calls"),
    S("tool.name", OINF),
    S("mcp.tool.name", OTEL, note="some MCP instrumentations"),
)
_field(
    "tool_call_id",
    "str",
    S("gen_ai.tool.call.id", GENAI),
    S("tool_call.id", OINF),
    S("jsonrpc.request.id", OTEL, note="MCP request id"),
)
_field(
    "tool_arguments",
    "raw",
    S("gen_ai.tool.call.arguments", GENAI, note="hashed into tool_args_hash, never kept"),
    S("tool.parameters", OINF),
    S("traceloop.entity.input", OLLM, note="tool spans only"),
)
_field(
    "streaming",
    "bool",
    S("gen_ai.request.stream", GENAI),
    S("llm.is_streaming", OLLM),
    S("llm.invocation_parameters", OINF, note='JSON object; its "stream" member', member="stream"),
)
_field(
    "reported_cost",
    "float",
    S("gen_ai.cost.total_cost", LITELLM, note="USD"),
    S("gen_ai.usage.cost", OTEL, note="Langfuse"),
    S("gen_ai.cost.usd", OTEL),
)
_field(
    "error_type",
    "str",
    S("error.type", OTEL),
    S("exception.type", OTEL, note="from the span's exception event"),
)

# Span-kind markers used to derive the layer and the operation.
KIND_MARKERS: tuple[Source, ...] = (
    S("openinference.span.kind", OINF, note="LLM, CHAIN, TOOL, AGENT, RETRIEVER, EMBEDDING, ..."),
    S("traceloop.span.kind", OLLM, note="workflow, task, agent, tool"),
    S("gen_ai.span.kind", LOONG, note="LLM, CHAIN, AGENT, TOOL, TASK, ENTRY, STEP, ..."),
    S("mcp.method.name", OTEL, note="MCP: tools/call etc. makes the span a tool span"),
)

# Kind marker value (upper-cased) -> operation name.
KIND_TO_OPERATION = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "CHAIN": "chain",
    "WORKFLOW": "workflow",
    "TASK": "task",
    "RETRIEVER": "retrieval",
    "RERANKER": "rerank",
    "ENTRY": "entry",
    "STEP": "step",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluation",
}
OPERATION_ALIASES = {
    "completion": "text_completion",
    "embedding": "embeddings",
    "acompletion": "chat",
}

# Inline content: attribute key -> role. Prefix keys end with ".".
CONTENT_ATTRS: dict[str, str] = {
    "gen_ai.input.messages": "input",
    "gen_ai.output.messages": "output",
    "gen_ai.system_instructions": "system",
    "gen_ai.prompt": "input",
    "gen_ai.completion": "output",
    "input.value": "input",
    "output.value": "output",
    "gen_ai.tool.call.arguments": "tool",
    "gen_ai.tool.call.result": "tool",
    "traceloop.entity.input": "input",
    "traceloop.entity.output": "output",
}
CONTENT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gen_ai.prompt.", "input"),
    ("gen_ai.completion.", "output"),
    ("llm.input_messages.", "input"),
    ("llm.output_messages.", "output"),
)
# Deprecated per-message events (content in their attributes) -> role.
CONTENT_EVENTS: dict[str, str] = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "input",
    "gen_ai.assistant.message": "input",
    "gen_ai.tool.message": "tool",
    "gen_ai.choice": "output",
    "gen_ai.content.prompt": "input",
    "gen_ai.content.completion": "output",
    "gen_ai.client.inference.operation.details": "input",
}
CHUNK_EVENT = "gen_ai.content.chunk"
CHUNK_PAYLOAD_ID = "gen_ai.content.payload_id"
CHUNK_ROLE = "gen_ai.content.role"
CHUNK_TARGET = "gen_ai.content.target_span_id"  # on carrier spans (skipped by normalization)
CHUNKED_PAYLOADS = "gen_ai.content.chunked_payloads"  # on the span whose content was chunked
# Events whose timestamp marks the first streamed token (TTFT = the earliest such event -
# span start). OpenLLMetry records one completion-chunk event per streamed chunk: the first
# one is the first token, and their presence says the call streamed.
STREAM_CHUNK_EVENTS = frozenset({"gen_ai.content.completion.chunk", "llm.content.completion.chunk"})
FIRST_TOKEN_EVENTS = (
    frozenset(
        {
            "First Token Stream Event",  # OpenInference
            "gen_ai.content.first_token",
            "gen_ai.first_token",
            "first_token",
            "llm.first_token",
            "journey.FIRST_TOKEN",  # vLLM request journey event
        }
    )
    | STREAM_CHUNK_EVENTS
)
# Preemptions of a request on the model server, from span events: vLLM's request journey
# events (``journey.QUEUED`` ... ``journey.FINISHED``) carry the running count in
# ``num_preemptions``; SGLang marks each retraction with a ``retract`` event.
JOURNEY_EVENT_PREFIX = "journey."
JOURNEY_PREEMPTIONS = "num_preemptions"
RETRACT_EVENT = "retract"
# Workflow nodes. Dify's ObservabilityLayer names a node span after the node's title and sets
# ``node.type`` (llm, code, tool, knowledge-retrieval, if-else, http-request, ...); OpenInference's
# LangChain instrumentation puts LangGraph's node name in the ``metadata`` JSON.
NODE_TYPE = "node.type"
LANGGRAPH_METADATA = "metadata"
LANGGRAPH_NODE = "langgraph_node"
# Attribute prefixes that make a span LLM-related.
LLM_PREFIXES = (
    "gen_ai.",
    "llm.",
    "openinference.",
    "mcp.",
    "traceloop.",
    "input.value",
    "output.value",
    "tool.name",
    "litellm.",
)

# --------------------------------------------------------------------------- dependencies
# Client spans of Redis, databases, vector databases, HTTP, RPC and messaging calls (no LLM
# attribute) become layer "dependency" records. Each part of the dependency's identity reads the
# first source present (current semantic-convention names before the older ones).
DEP_DB = "OTel database"
DEP_HTTP = "OTel HTTP"
DEP_RPC = "OTel RPC"
DEP_MSG = "OTel messaging"
DEP_OLD = "OTel (before 1.26)"

DEPENDENCY_SYSTEMS: tuple[Source, ...] = (
    S("db.system.name", DEP_DB, note="postgresql, redis, mongodb, ..., lower-cased"),
    S("db.system", DEP_OLD, note="also OpenLLMetry's vector databases: chroma, qdrant, ..."),
    S("vector_db.vendor", OLLM, note="old OpenLLMetry vector databases"),
    S("rpc.system", DEP_RPC, note="grpc, connect_rpc, dubbo, ..."),
    S("messaging.system", DEP_MSG, note="kafka, rabbitmq, ..."),
    S("http.request.method", DEP_HTTP, note='client spans only; system "http"'),
    S("http.method", DEP_OLD, note='client spans only; system "http"'),
)
# host of the dependency; ``url.full`` / ``http.url`` give it when no address attribute does
DEPENDENCY_ADDRESS: tuple[Source, ...] = (
    S("server.address", OTEL),
    S("net.peer.name", DEP_OLD),
    S("http.host", DEP_OLD),
    S("net.sock.peer.addr", DEP_OLD),
    S("url.full", DEP_HTTP, note="its host and port"),
    S("http.url", DEP_OLD, note="its host and port"),
)
DEPENDENCY_PORT: tuple[Source, ...] = (S("server.port", OTEL), S("net.peer.port", DEP_OLD))
# what inside the dependency: database, RPC service or messaging destination
DEPENDENCY_NAMESPACE: tuple[Source, ...] = (
    S("db.namespace", DEP_DB),
    S("db.name", DEP_OLD),
    S("db.redis.database_index", DEP_OLD, note="Redis database number"),
    S("rpc.service", DEP_RPC),
    S("messaging.destination.name", DEP_MSG),
    S("messaging.destination", DEP_OLD),
    S("db.vector.table_name", OLLM, note="vector database table"),
)
# the record's operation (low cardinality by the conventions: never the statement)
DEPENDENCY_OPERATION: tuple[Source, ...] = (
    S("db.operation.name", DEP_DB),
    S("db.operation", DEP_OLD, note="also OpenLLMetry's vector databases"),
    S("rpc.method", DEP_RPC),
    S("messaging.operation.type", DEP_MSG),
    S("messaging.operation", DEP_OLD),
    S("http.request.method", DEP_HTTP),
    S("http.method", DEP_OLD),
)
# without an operation attribute: the statement's first keyword (SELECT, GET), never its text
DEPENDENCY_STATEMENT: tuple[Source, ...] = (
    S("db.query.text", DEP_DB, note="first keyword only"),
    S("db.statement", DEP_OLD, note="first keyword only"),
)
DEPENDENCY_SPAN_KINDS = frozenset({3, 4})  # CLIENT, PRODUCER
# systems whose namespace (a database index) is no part of the dependency's name
NO_NAMESPACE = frozenset({"redis"})
HTTP_SYSTEM_KEYS = frozenset({"http.request.method", "http.method"})
