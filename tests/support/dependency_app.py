"""An app calling its dependencies through real OpenTelemetry instrumentation (golden input).

Records what the instrumentation packages themselves emit for a RAG app's dependencies: HTTP
(httpx, to a local server answering 200 and 503), SQLite (sqlite3, through dbapi) and Redis
(redis-py on fakeredis), under one app span, as an OTLP ``ExportTraceServiceRequest``.
``--semconv`` picks the attribute names: ``old`` (the instrumentations' default, semantic
conventions before 1.26) or ``new`` (``OTEL_SEMCONV_STABILITY_OPT_IN=http,database``).

These instrumentation versions conflict with the OpenAI ones of the ``instrumentation`` extra,
so they live in their own virtual environment: ``python -m venv /tmp/deps && /tmp/deps/bin/pip
install <REQUIREMENTS>``, then ``python -m tests.support.make_golden --dependencies
/tmp/deps/bin/python``. The tests only read the recorded ``input.pb``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REQUIREMENTS = (
    "opentelemetry-sdk==1.45.1",
    "opentelemetry-exporter-otlp-proto-common==1.45.2",
    "opentelemetry-instrumentation-httpx==0.66b1",
    "opentelemetry-instrumentation-sqlite3==0.66b1",
    "opentelemetry-instrumentation-redis==0.66b1",
    "fakeredis==2.41.0",
    "httpx",
)


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        status = 503 if self.path.startswith("/fail") else 200
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--semconv", choices=("old", "new"), required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    args = ap.parse_args()
    if args.semconv == "new":
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http,database"

    import fakeredis
    import httpx
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    SQLite3Instrumentor().instrument()
    RedisInstrumentor().instrument()

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    tracer = trace.get_tracer("rag-app")
    with tracer.start_as_current_span("retrieve context"):
        with httpx.Client() as client:
            ok = client.get(f"{base}/search?q=refund")
            failed = client.post(f"{base}/fail", json={"q": "refund"})
        db = sqlite3.connect(":memory:")
        cursor = db.cursor()
        cursor.execute("CREATE TABLE docs (id INTEGER, body TEXT)")
        cursor.execute("SELECT body FROM docs WHERE id = ?", (1,))
        db.close()
        cache = fakeredis.FakeRedis()
        cache.set("answer:refund", "cached")
        cache.get("answer:refund")
    server.shutdown()

    spans = exporter.get_finished_spans()
    args.out.write_bytes(encode_spans(spans).SerializeToString())
    truth = {
        "semconv": args.semconv,
        "http": [
            {"method": "GET", "status": ok.status_code},
            {"method": "POST", "status": failed.status_code},
        ],
        "http_port": server.server_port,
        "sqlite_statements": 2,
        "redis_commands": ["SET", "GET"],
        "spans": [
            {"name": s.name, "kind": s.kind.name, "attributes": dict(s.attributes or {})}
            for s in spans
        ],
    }
    args.truth.write_text(json.dumps(truth, indent=1, sort_keys=True, default=str) + "\n")


if __name__ == "__main__":
    main()
