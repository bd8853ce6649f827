"""Steady load for broker tests: messages stamped with the time they are sent, and the token
totals the offline pipeline says they hold."""

from __future__ import annotations

from collections.abc import Iterable

from spanwatch.devtools.traffic import TrafficGenerator
from spanwatch.pipeline.ingest.message import ingest_message
from spanwatch.pipeline.tokens.burn import counted_calls, entity_ids

NS = 10**9


def stamped_message(gen: TrafficGenerator, at: int, spans: int = 30) -> bytes:
    """One message stamped with its send time ``at``. Spans that ended more than 2 s before
    their message are left out (long agent traces end their first spans a minute before the
    root), so that no span is late and token totals are whole."""
    data = next(gen.batches(spans, at, spread_ns=NS)).traces_data()
    for rs in data.resource_spans:
        for ss in rs.scope_spans:
            keep = [sp for sp in ss.spans if sp.end_time_unix_nano >= at - 2 * NS]
            del ss.spans[:]
            ss.spans.extend(keep)
    return bytes(data.SerializeToString())


def token_truth(values: Iterable[bytes]) -> dict[tuple[str, str], int]:
    """Input plus output tokens of every counted LLM call, per model and per user (calls with
    no user id are accounted to their model only, as :func:`entity_ids` does)."""
    truth: dict[tuple[str, str], int] = {}
    for value in values:
        for s in counted_calls(ingest_message(value).spans):
            tokens = (s.input_tokens or 0) + (s.output_tokens or 0)
            for key in entity_ids(s):
                if key[0] in ("model", "user"):
                    truth[key] = truth.get(key, 0) + tokens
    return truth
