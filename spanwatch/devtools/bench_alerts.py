"""``spanwatch bench alerts``: how long from producing a span to the webhook request.

A worker runs on the embedded broker under a steady background load (the traffic generator,
``--rate`` traces/s). Probes are produced once a second:

* **per-span path**: a span whose completion leaks a phone number, with a service name of its
  own (so each probe is a new alert group): span -> ingest -> safety finding ->
  ``spanwatch.findings`` -> rule evaluation -> ``spanwatch.alerting`` -> alert manager ->
  apprise -> webhook. The rule has no ``for:`` and the route ``group_wait: 0s``, which the
  goal excludes.
* **window path**: a model-server span with a 30 s TTFT for a model of its own; the threshold
  rule watches 10 s windows. Measured from the moment the closed window is readable on
  ``spanwatch.metrics`` to the webhook (the window itself waits for its end plus
  ``allowed_lateness``, by design).
"""

from __future__ import annotations

import re
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import Consumer, Producer

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import WorkerProc
from spanwatch.devtools.traffic import TrafficGenerator, kvs
from spanwatch.devtools.webhook import Webhook
from spanwatch.pipeline.config import BROKER_PROFILES, TopicSettings

TANSU = BROKER_PROFILES["tansu"]
RULES = """
groups:
  - name: bench
    rules:
      - alert: ProbePii
        kind: finding
        kinds: [pii]
        matchers: ['service=~"probe-.*"']
        labels: {severity: warning}
      - alert: ProbeSlow
        signal: ttft_p95
        window: 10s
        matchers: ['model=~"probe-.*"']
        threshold: 10
        by: [model]
        labels: {severity: warning}
"""
ROUTING = """
route:
  receiver: hook
  group_by: [alertname, service, model]
  group_wait: 0s
  group_interval: 1m
receivers:
  - name: hook
    urls: ["json://127.0.0.1:{port}/hook"]
"""


def _one_span(service: str, name: str, server: bool, seconds: int, attrs: dict[str, Any]) -> bytes:
    """A message with one span of ``service`` ending now."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

    now = time.time_ns()
    data = TracesData()
    rs = data.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": service}))
    sp = rs.scope_spans.add().spans.add()
    sp.trace_id, sp.span_id = uuid.uuid4().bytes, uuid.uuid4().bytes[:8]
    sp.name = name
    sp.kind = Span.SPAN_KIND_SERVER if server else Span.SPAN_KIND_CLIENT
    sp.start_time_unix_nano, sp.end_time_unix_nano = now - seconds * 10**9, now
    sp.attributes.extend(kvs(attrs))
    return data.SerializeToString()


def _probe_pii(i: int) -> bytes:
    """A completion leaking a phone number, from a service of its own (a new alert group)."""
    return _one_span(
        f"probe-{i}",
        "chat m",
        False,
        1,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.output.messages": f"call me at 1391234{i % 10000:04d}",
        },
    )


def _probe_slow(i: int) -> bytes:
    """A model-server span with a 30 s TTFT, for a model of its own."""
    return _one_span(
        "vllm-probe",
        "llm_request",
        True,
        31,
        {
            "gen_ai.request.model": f"probe-{i}",
            "gen_ai.latency.time_to_first_token": 30.0,
            "gen_ai.usage.completion_tokens": 10,
        },
    )


def _background(bootstrap: str, rate: float, stop: threading.Event) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **TANSU.producer})
    gen = TrafficGenerator(3, runaway_every=0)
    while not stop.wait(0.5):
        batch = next(gen.batches(max(1, round(rate * 0.5)) * 8, time.time_ns()))
        producer.produce("otlp_spans", batch.traces_data().SerializeToString())
        producer.poll(0)
    producer.flush(10)


def _note_window(m: Any, seen: dict[str, float]) -> None:
    """When a probe's closed window became readable on ``spanwatch.metrics``."""
    if m is None or m.error() is not None or not m.value():
        return
    model = orjson.loads(m.value()).get("series", {}).get("model", "")
    if model.startswith("probe-") and model not in seen:
        seen[model] = time.time()


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q)) if xs else float("nan")


def bench_alerts(probes: int = 60, rate: float = 20.0, fetch_wait_ms: int = 100) -> int:
    """``fetch_wait_ms`` caps the worker's fetch long-poll (Tansu holds a fetch for its whole
    max wait, where Kafka answers as soon as records arrive); 1500 is faust's own value."""
    workdir = Path(tempfile.mkdtemp(prefix="spanwatch-bench-alerts-"))
    with (
        Webhook() as hook,
        EmbeddedBroker(
            topics=TopicSettings().all_topics(), partitions=4, log_path=workdir / "tansu.log"
        ) as b,
    ):
        rules = workdir / "rules"
        rules.mkdir()
        (rules / "r.yaml").write_text(RULES)
        (rules / "am.yaml").write_text(ROUTING.format(port=hook.port))
        cfg = workdir / "sw.yaml"
        cfg.write_text(
            f"kafka: {{fetch_max_wait_ms: {fetch_wait_ms}}}\n"
            f'metrics: {{windows: ["10s"], allowed_lateness: 2s}}\n'
            f'alerting: {{rules: ["{rules}"], tick_interval_s: 0.5}}\n'
            "safety: {scanners: [{type: pii}]}\n"
        )
        worker = WorkerProc(b.bootstrap, workdir, config=cfg).start(90)
        stop = threading.Event()
        bg = threading.Thread(target=_background, args=(b.bootstrap, rate, stop), daemon=True)
        window_seen: dict[str, float] = {}
        consumer = Consumer(
            {
                "bootstrap.servers": b.bootstrap,
                **TANSU.consumer,
                "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                "auto.offset.reset": "latest",
            }
        )
        consumer.subscribe(["spanwatch.metrics"])
        try:
            bg.start()
            time.sleep(5)  # the load is flowing
            producer = Producer({"bootstrap.servers": b.bootstrap, **TANSU.producer})
            sent: dict[str, float] = {}
            for i in range(probes):
                t = time.time()
                producer.produce("otlp_spans", _probe_pii(i))
                producer.produce("otlp_spans", _probe_slow(i))
                producer.poll(0)
                sent[f"probe-{i}"] = t
                end = t + 1.0
                while time.time() < end:
                    _note_window(consumer.poll(0.05), window_seen)
            producer.flush(10)
            deadline = time.time() + 40
            while time.time() < deadline and len(hook.requests) < 2 * probes:
                _note_window(consumer.poll(0.05), window_seen)
        finally:
            stop.set()
            bg.join(10)
            consumer.close()
            worker.stop()
        requests = list(hook.requests)
    per_span, per_window = [], []
    for r in requests:
        title = r["body"].get("title", "") if isinstance(r["body"], dict) else ""
        found = re.search(r"probe-\d+", title)
        name = found.group(0) if found else ""
        if title.startswith("[FIRING:1] ProbePii") and name in sent:
            per_span.append(r["at"] - sent[name])
        elif title.startswith("[FIRING:1] ProbeSlow") and name in window_seen:
            per_window.append(r["at"] - window_seen[name])
    print(
        f"load: ~{rate:.0f} traces/s of background traffic; {probes} probes, 1 per second; "
        f"worker fetch long-poll capped at {fetch_wait_ms} ms"
    )
    print(
        f"per-span path (span produced -> webhook request): {len(per_span)}/{probes} "
        f"arrived; p50 {_pct(per_span, 50) * 1000:.0f} ms, p99 {_pct(per_span, 99) * 1000:.0f}"
        f" ms, max {max(per_span, default=float('nan')) * 1000:.0f} ms"
    )
    print(
        f"window path (closed window readable -> webhook request): {len(per_window)}/"
        f"{len(window_seen)} arrived; p50 {_pct(per_window, 50) * 1000:.0f} ms, p99 "
        f"{_pct(per_window, 99) * 1000:.0f} ms"
    )
    if per_span:
        print(
            f"goal p99 < 1000 ms on the per-span path: "
            f"{'met' if _pct(per_span, 99) < 1.0 else 'NOT met'} "
            f"(mean {statistics.mean(per_span) * 1000:.0f} ms)"
        )
    return 0 if per_span else 1
