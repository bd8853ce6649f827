"""A model-server span takes its model, and the caller's service, from the call it serves.

Real vLLM ``llm_request`` spans (v1 tracing) carry no model attribute, so the model-server
windows of a fleet would all be ``model=""`` and per-model rules could not see queue,
prefill and decode time. The engine's span is a child (through trace context) of the client
span that called it: an LLM span of the app, usually with an HTTP client span in between.
So, for each model-server record of a message with no model:

1. the nearest ancestor in the same message (any span, records or not, links the chain)
   that is an LLM record with a model gives its model and service (``caller_service``);
2. else the engine's resource attribute ``gen_ai.request.model`` (set with
   ``OTEL_RESOURCE_ATTRIBUTES`` where the engine is started);
3. else ``normalize.engine_models``: service-name globs to the model that engine serves.

Exporters send a trace's spans together (the collector's ``partition_traces_by_id``), so the
caller is nearly always in the same message. Each inherited model is flagged in ``issues``
(``inherited:model``) so that a record says where its model came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from .spans import Layer, LlmSpan

MAX_HOPS = 16
RESOURCE_MODEL = "gen_ai.request.model"


def inherit_models(
    records: Sequence[LlmSpan],
    parents: Mapping[str, str],
    resources: Mapping[str, Mapping[str, object]],
    engine_models: Sequence[tuple[str, str]] = (),
) -> int:
    """Fill the model of model-server records that have none (module docs); ``parents``: span
    id -> parent span id of every span of the message; ``resources``: span id -> resource
    attributes. Returns how many got one."""
    by_id = {r.span_id: r for r in records}
    filled = 0
    for rec in records:
        if rec.layer is not Layer.MODEL_SERVER or rec.model:
            continue
        model, caller = _from_caller(rec, parents, by_id)
        if model is None:
            found = resources.get(rec.span_id, {}).get(RESOURCE_MODEL)
            model = found if isinstance(found, str) and found else None
        if model is None:
            model = next((m for glob, m in engine_models if fnmatchcase(rec.service, glob)), None)
        if model is None:
            continue
        rec.request_model = model
        rec.caller_service = caller
        rec.issues = (*rec.issues, "inherited:model")
        filled += 1
    return filled


def _from_caller(
    rec: LlmSpan, parents: Mapping[str, str], by_id: Mapping[str, LlmSpan]
) -> tuple[str | None, str | None]:
    cur = rec.parent_span_id
    for _ in range(MAX_HOPS):
        if not cur:
            break
        up = by_id.get(cur)
        if up is not None and up.layer is not Layer.MODEL_SERVER and up.model:
            return up.model, up.service
        cur = parents.get(cur, "")
    return None, None
