"""Dependency calls (Redis, databases, vector databases, HTTP, RPC, messaging) as layer
"dependency": records, golden-signal windows and Prometheus series per calling service and
dependency, read from the current and the older semantic-convention names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from spanwatch.pipeline.ingest.message import IngestOptions, ingest_message
from spanwatch.pipeline.ingest.normalize import NormalizeOptions
from spanwatch.pipeline.ingest.spans import Layer, LlmSpan
from spanwatch.pipeline.windows.golden import SeriesKeyer
from spanwatch.pipeline.windows.preaggregate import PreAggregator
from spanwatch.pipeline.windows.spec import WindowSettings, WindowSpec
from spanwatch.pipeline.windows.state import close_offline
from tests.builders import T0, span, traces
from tests.support.make_golden import DEPENDENCY_CASES, expected_lines
from tests.support.paths import TESTDATA


def records(case: str) -> tuple[list[LlmSpan], dict[str, Any]]:
    d = TESTDATA / case
    result = ingest_message((d / "input.pb").read_bytes())
    assert not result.dead_letters
    return result.spans, json.loads((d / "truth.json").read_text())


@pytest.mark.parametrize("case", sorted(DEPENDENCY_CASES))
def test_golden_dependency_records(case: str) -> None:
    d = TESTDATA / case
    assert expected_lines((d / "input.pb").read_bytes()) == (d / "expected.jsonl").read_text()


@pytest.mark.parametrize("case", sorted(DEPENDENCY_CASES))
def test_real_instrumentation_calls_become_dependency_records(case: str) -> None:
    """httpx, sqlite3 and redis instrumentation (old and new attribute names) give the same
    dependencies and operations; the app's own internal span is not a dependency call."""
    recs, truth = records(case)
    assert all(r.layer is Layer.DEPENDENCY for r in recs)
    called = [s for s in truth["spans"] if s["kind"] == "CLIENT"]
    assert len(recs) == len(called) == 6
    http = f"http 127.0.0.1:{truth['http_port']}"
    got = sorted((r.dependency.split(" ")[0], r.operation, r.status, r.error_type) for r in recs)  # type: ignore[union-attr]
    assert got == [
        ("http", "GET", "unset", None),
        ("http", "POST", "error", "503"),  # the status code, as error.type would say
        ("redis", "GET", "unset", None),  # from the statement's first word, never its text
        ("redis", "SET", "unset", None),
        ("sqlite", "CREATE", "unset", None),
        ("sqlite", "SELECT", "unset", None),
    ]
    assert {r.dependency for r in recs if r.dependency.startswith("http")} == {http}  # type: ignore[union-attr]
    redis = {r.dependency for r in recs if r.dependency.startswith("redis")}  # type: ignore[union-attr]
    # one name whatever the conventions: the older ones add the database index, the stable
    # ones leave index 0 out, and a server is not renamed by an upgrade
    assert len(redis) == 1 and next(iter(redis)).endswith(":6379")
    assert all(r.service == "rag-app" and r.duration_s for r in recs)
    assert not any("?" in r.operation or "docs" in r.operation for r in recs)


@pytest.mark.parametrize(
    ("attrs", "kind", "dependency", "operation"),
    [
        pytest.param(  # current database conventions
            {
                "db.system.name": "postgresql",
                "db.namespace": "orders",
                "db.operation.name": "SELECT",
                "db.query.text": "SELECT * FROM orders WHERE id = $1",
                "server.address": "pg.internal",
                "server.port": 5432,
            },
            Span.SPAN_KIND_CLIENT,
            "postgresql pg.internal:5432/orders",
            "SELECT",
            id="postgresql-current",
        ),
        pytest.param(  # before 1.26: db.name, net.peer.*
            {
                "db.system": "mysql",
                "db.name": "shop",
                "db.statement": "update carts set n = 1",
                "net.peer.name": "mysql",
                "net.peer.port": 3306,
            },
            Span.SPAN_KIND_CLIENT,
            "mysql mysql:3306/shop",
            "UPDATE",
            id="mysql-old",
        ),
        pytest.param(  # OpenLLMetry's vector database instrumentation, inside a workflow
            {
                "db.system": "Chroma",
                "db.operation": "query",
                "db.vector.query.top_k": 5,
                "traceloop.workflow.name": "rag",
            },
            Span.SPAN_KIND_CLIENT,
            "chroma",
            "query",
            id="chroma-openllmetry",
        ),
        pytest.param(
            {
                "db.system": "Pinecone",
                "server.address": "idx-1.svc.pinecone.io",
                "db.operation": "query",
            },
            Span.SPAN_KIND_CLIENT,
            "pinecone idx-1.svc.pinecone.io",
            "query",
            id="pinecone-openllmetry",
        ),
        pytest.param(
            {"vector_db.vendor": "Qdrant", "vector_db.query.top_k": 3},
            Span.SPAN_KIND_CLIENT,
            "qdrant",
            "call",
            id="qdrant-old-openllmetry",
        ),
        pytest.param(
            {
                "rpc.system": "grpc",
                "rpc.service": "reco.Recommender",
                "rpc.method": "Rank",
                "server.address": "reco",
                "server.port": 50051,
                "rpc.grpc.status_code": 0,
            },
            Span.SPAN_KIND_CLIENT,
            "grpc reco:50051/reco.Recommender",
            "Rank",
            id="grpc",
        ),
        pytest.param(
            {
                "messaging.system": "kafka",
                "messaging.destination.name": "orders",
                "messaging.operation.type": "send",
                "server.address": "kafka",
                "server.port": 9092,
            },
            Span.SPAN_KIND_PRODUCER,
            "kafka kafka:9092/orders",
            "send",
            id="kafka-producer",
        ),
        pytest.param(
            {"messaging.system": "rabbitmq", "messaging.destination": "jobs"},
            Span.SPAN_KIND_PRODUCER,
            "rabbitmq jobs",
            "call",
            id="rabbitmq-old",
        ),
        pytest.param(
            {"http.request.method": "POST", "url.full": "https://search.example.com:8443/q?x=1"},
            Span.SPAN_KIND_CLIENT,
            "http search.example.com:8443",
            "POST",
            id="http-url-only",
        ),
    ],
)
def test_span_shapes_of_each_convention(
    attrs: dict[str, Any], kind: Any, dependency: str, operation: str
) -> None:
    result = ingest_message(traces(span(attrs, name="call", kind=kind)).SerializeToString())
    (rec,) = result.spans
    assert (rec.layer, rec.dependency, rec.operation) == (Layer.DEPENDENCY, dependency, operation)


@pytest.mark.parametrize(
    ("name", "operation"),
    [("qdrant.search", "search"), ("qdrant.upsert", "upsert"), ("search docs", "call")],
)
def test_operation_from_the_span_name_when_no_attribute_gives_it(name: str, operation: str) -> None:
    """OpenLLMetry's Qdrant spans carry no db.operation: ``qdrant.search`` is the operation."""
    attrs = {"db.system": "qdrant", "server.address": "vec", "db.qdrant.collection": "docs"}
    value = traces(span(attrs, name=name, kind=Span.SPAN_KIND_CLIENT)).SerializeToString()
    (rec,) = ingest_message(value).spans
    assert (rec.dependency, rec.operation) == ("qdrant vec", operation)


@pytest.mark.parametrize(
    ("attrs", "kind"),
    [
        pytest.param(  # the callee's side of HTTP is not a dependency call
            {"http.request.method": "GET", "server.address": "api"},
            Span.SPAN_KIND_SERVER,
            id="http-server",
        ),
        pytest.param(  # a consumer receives; it does not call
            {"messaging.system": "kafka", "messaging.destination.name": "orders"},
            Span.SPAN_KIND_CONSUMER,
            id="kafka-consumer",
        ),
        pytest.param({"net.peer.name": "x"}, Span.SPAN_KIND_CLIENT, id="no-system"),
    ],
)
def test_spans_that_call_no_dependency_are_skipped(attrs: dict[str, Any], kind: Any) -> None:
    result = ingest_message(traces(span(attrs, name="x", kind=kind)).SerializeToString())
    assert result.spans == [] and result.skipped_non_llm == 1


def test_an_llm_client_span_with_a_server_address_stays_an_llm_call() -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "http.request.method": "POST",
        "server.address": "api.openai.com",
    }
    (rec,) = ingest_message(traces(span(attrs)).SerializeToString()).spans
    assert (rec.layer, rec.dependency, rec.operation) == (Layer.APP, None, "chat")


def test_dependencies_can_be_switched_off() -> None:
    value = traces(span({"db.system.name": "redis"}, name="GET")).SerializeToString()
    opts = IngestOptions(normalize=NormalizeOptions(dependencies=False))
    assert ingest_message(value, options=opts).spans == []


def _windows(recs: list[LlmSpan]) -> list[dict[str, Any]]:
    keyer = SeriesKeyer()
    settings = WindowSettings((WindowSpec.parse("1m"),), 0, 10**12)
    pre = PreAggregator(settings, keyer, lambda: 0)
    out = []
    for c in close_offline(pre.add_message(0, 0, recs)):
        out.append(c.to_record(keyer.labels(json.loads(c.series))))
    return out


def _dep_spans() -> list[Span]:
    """A RAG app calling Redis (3 fast GETs) and a vector database (2 queries, 1 failing)."""
    spans = []
    for i, (attrs, ms, error) in enumerate(
        [
            ({"db.system.name": "redis", "server.address": "cache", "server.port": 6379}, 2, 0),
            ({"db.system.name": "redis", "server.address": "cache", "server.port": 6379}, 3, 0),
            ({"db.system.name": "redis", "server.address": "cache", "server.port": 6379}, 4, 0),
            ({"db.system": "qdrant", "server.address": "vec", "db.operation": "search"}, 80, 0),
            ({"db.system": "qdrant", "server.address": "vec", "db.operation": "search"}, 900, 1),
        ]
    ):
        spans.append(
            span(
                {**attrs, "db.query.text": "GET k"} if "redis" in str(attrs) else attrs,
                name="call",
                span_id=(i + 1).to_bytes(8, "big"),
                end=T0 + ms * 1_000_000,
                error=bool(error),
            )
        )
    return spans


def test_windows_per_calling_service_and_dependency() -> None:
    recs = ingest_message(traces(*_dep_spans(), service="rag-app").SerializeToString()).spans
    got = {w["series"]["dependency"]: w for w in _windows(recs)}
    assert set(got) == {"redis cache:6379", "qdrant vec"}
    redis, vec = got["redis cache:6379"], got["qdrant vec"]
    assert redis["series"] == {
        "service": "rag-app",
        "layer": "dependency",
        "operation": "GET",
        "model": "",
        "dependency": "redis cache:6379",
        "node": "",
    }
    assert (redis["count"], redis["errors"], vec["count"], vec["errors"]) == (3, 0, 2, 1)
    assert vec["error_rate"] == 0.5 and vec["exemplars"]["error_trace_id"]
    assert redis["latency_s"]["max"] == pytest.approx(0.004, rel=0.01)
    assert vec["latency_s"]["max"] == pytest.approx(0.9, rel=0.01)


def test_prometheus_dependency_families_apart_from_llm_calls() -> None:
    from spanwatch.pipeline.ingest.message import IngestStats
    from spanwatch.runtime.prom import LatestWindows, SpanwatchCollector, WindowTotals

    llm = span({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}, span_id=b"\x09" * 8)
    recs = ingest_message(traces(*_dep_spans(), llm, service="rag-app").SerializeToString()).spans
    keyer = SeriesKeyer()
    settings = WindowSettings((WindowSpec.parse("1m"),), 0, 10**12)
    totals = WindowTotals(WindowSpec.parse("1m"))
    for c in close_offline(PreAggregator(settings, keyer, lambda: 0).add_message(0, 0, recs)):
        totals.on_window_closed(c, c.to_record(keyer.labels(json.loads(c.series))))
    reg = CollectorRegistry()
    reg.register(SpanwatchCollector(LatestWindows(), IngestStats(), totals=totals))
    samples = [
        s
        for fam in text_string_to_metric_families(generate_latest(reg).decode())
        for s in fam.samples
    ]
    by = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
    vec = (("dependency", "qdrant vec"), ("layer", "dependency"), ("operation", "search"))
    vec += (("service", "rag-app"),)
    assert by[("spanwatch_dependency_requests_total", vec)] == 2
    errors = tuple(sorted((*vec, ("error_type", "_OTHER"))))
    assert by[("spanwatch_dependency_errors_total", errors)] == 1
    hist = "spanwatch_dependency_request_duration_seconds"
    assert by[(f"{hist}_bucket", tuple(sorted((*vec, ("le", "0.1")))))] == 1
    assert by[(f"{hist}_count", vec)] == 2
    llm_names = {s.name for s in samples if s.name.startswith("spanwatch_llm_requests")}
    assert llm_names == {"spanwatch_llm_requests_total"}
    assert all(
        "dependency" not in s.labels and s.labels.get("layer") != "dependency"
        for s in samples
        if s.name.startswith("spanwatch_llm_") and "layer" in s.labels and "window" not in s.labels
    )
