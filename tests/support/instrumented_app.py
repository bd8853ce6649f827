"""An LLM app instrumented with the OpenTelemetry SDK and a real instrumentation package.

It calls a local fake OpenAI server (streamed and non-streamed chat), then exports its spans
either as an OTLP protobuf file (``--out``; golden files) or over OTLP to a collector
(``--otlp-grpc`` / ``--otlp-http``; end-to-end tests). ``--truth`` records what the fake
server did and the ids of the spans, for the tests to check normalized records against.

    python tests/support/instrumented_app.py --instrumentation openai-v2 --out x.pb --truth t.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.fake_openai import FakeOpenAI

SERVICE = {
    "openai-v2": "chat-app-otel",
    "openinference": "chat-app-openinference",
    "openllmetry": "chat-app-openllmetry",
    "langchain+openai-v2": "chat-app-langchain",
}


def instrument(name: str, provider: object) -> None:
    if name in ("openai-v2", "langchain+openai-v2"):
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    if name == "langchain+openai-v2":  # a framework's instrumentation on top of the client's
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
    if name == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIInstrumentor

        OIInstrumentor().instrument(tracer_provider=provider)
    if name == "openllmetry":  # Traceloop's OpenLLMetry: one event per streamed chunk
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as TLInstrumentor

        TLInstrumentor().instrument(tracer_provider=provider)


def call_openai(base_url: str) -> tuple[str, str]:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="sk-test-not-a-real-key")
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Explain Kafka consumer groups briefly."}],
    )
    text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi."}]
    )
    return text, reply.choices[0].message.content or ""


def call_langchain(base_url: str) -> tuple[str, str]:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model="gpt-4o-mini", base_url=base_url, api_key="sk-test-not-a-real-key", stream_usage=True
    )
    text = "".join(str(c.content) for c in llm.stream("Explain Kafka consumer groups briefly."))
    reply = llm.invoke("Say hi.")
    return text, str(reply.content)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instrumentation", choices=sorted(SERVICE), required=True)
    ap.add_argument("--out", help="write spans as an OTLP ExportTraceServiceRequest file")
    ap.add_argument("--otlp-grpc", help="export to this OTLP/gRPC endpoint (host:port)")
    ap.add_argument("--otlp-http", help="export to this OTLP/HTTP base URL")
    ap.add_argument("--truth", required=True)
    ap.add_argument("--first-token-delay", type=float, default=0.15)
    args = ap.parse_args()

    # Content capture on (both the old and the new switch of the GenAI instrumentations).
    os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE[args.instrumentation]})
    )
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    if args.otlp_grpc:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            SimpleSpanProcessor(
                OTLPSpanExporter(endpoint=f"http://{args.otlp_grpc}", insecure=True)
            )
        )
    if args.otlp_http:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        provider.add_span_processor(
            SimpleSpanProcessor(HttpExporter(endpoint=f"{args.otlp_http}/v1/traces"))
        )

    instrument(args.instrumentation, provider)

    with FakeOpenAI(first_token_delay=args.first_token_delay) as fake:
        if args.instrumentation == "langchain+openai-v2":
            text, reply = call_langchain(fake.base_url)
        else:
            text, reply = call_openai(fake.base_url)
        assert text and reply
        requests = list(fake.requests)
    provider.force_flush()
    spans = memory.get_finished_spans()
    if args.out:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        Path(args.out).write_bytes(encode_spans(spans).SerializeToString())
    truth = {
        "instrumentation": args.instrumentation,
        "service": SERVICE[args.instrumentation],
        "requests": requests,
        "spans": [
            {
                "trace_id": f"{s.context.trace_id:032x}",
                "span_id": f"{s.context.span_id:016x}",
                "name": s.name,
                "start_ns": s.start_time,
                "end_ns": s.end_time,
            }
            for s in spans
        ],
    }
    Path(args.truth).write_text(json.dumps(truth, indent=1))
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
