"""One count per LLM call when two instrumentations report it.

With a framework's instrumentation on (LangChain, LlamaIndex, Dify, Spring AI ...) and the
client library's too (openai-v2, OpenLLMetry, OpenInference's OpenAI), one model call
produces two LLM spans, often in two different traces (the framework's callback tracer and
the client's tracer do not share a context). Both report the same tokens, which would be
counted twice.

A framework span is the duplicate of a client span when both come from the same service,
their times overlap, their models agree (``gpt-4o-mini`` and ``gpt-4o-mini-2024-08-06`` are
the same model) and they report the same input and output tokens. The framework span keeps
its record, marked ``duplicate_of`` the client span's id, and its tokens, cost and LLM call
are not counted again: the client span is the one nearest to the wire. The check runs on the
spans of one source message (one export batch), so every worker count gives the same
answer; ``normalize.dedupe_instrumentations: false`` turns it off.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .spans import LLM_OPERATIONS, LlmSpan

FRAMEWORKS = (
    "langchain",
    "langgraph",
    "llama_index",
    "llamaindex",
    "haystack",
    "crewai",
    "autogen",
    "dspy",
    "dify",
    "spring",
    "semantic_kernel",
    "semantickernel",
    "agno",
    "smolagents",
    "pydantic_ai",
    "beeai",
    "openai_agents",
    "agents",
    "langflow",
    "flowise",
    "instructor",
    "guardrails",
)
SLACK_NS = 50_000_000  # clocks of two tracers in one process: 50 ms is plenty
_DATED = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


def framework_span(span: LlmSpan) -> bool:
    scope = span.instrumentation.lower()
    return any(name in scope for name in FRAMEWORKS)


def _models(span: LlmSpan) -> set[str]:
    return {_DATED.sub("", m.lower()) for m in (span.request_model, span.response_model) if m}


def _reports_tokens(span: LlmSpan) -> bool:
    return span.operation in LLM_OPERATIONS and (
        span.input_tokens is not None or span.output_tokens is not None
    )


def _same_call(framework: LlmSpan, client: LlmSpan) -> bool:
    """Same call, given the same service and token counts (the index key)."""
    if not (
        framework.start_ns <= client.end_ns + SLACK_NS
        and client.start_ns <= framework.end_ns + SLACK_NS
    ):
        return False
    fm, cm = _models(framework), _models(client)
    return not fm or not cm or bool(fm & cm)


def mark_duplicates(spans: Sequence[LlmSpan]) -> int:
    """Mark framework spans that repeat a client span's call; returns how many."""
    clients: dict[tuple[str, int | None, int | None], list[LlmSpan]] = {}
    frameworks: list[LlmSpan] = []
    for s in spans:
        if not _reports_tokens(s) or s.duplicate_of is not None:
            continue
        if framework_span(s):
            frameworks.append(s)
        else:
            clients.setdefault((s.service, s.input_tokens, s.output_tokens), []).append(s)
    if not clients or not frameworks:
        return 0
    paired: set[str] = set()
    marked = 0
    for f in frameworks:
        same = clients.get((f.service, f.input_tokens, f.output_tokens), ())
        match = next((c for c in same if c.span_id not in paired and _same_call(f, c)), None)
        if match is not None:
            f.duplicate_of = match.span_id
            paired.add(match.span_id)
            marked += 1
    return marked
