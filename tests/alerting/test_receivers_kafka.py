"""Receivers that are down, refusing, slow or timing out, all at once, behind a real worker:
each delivery's outcome comes from its own attempt, so every alert reaches every receiver that
recovers exactly once, and a refusing receiver is asked once per alert (a configuration error,
never retried)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import WorkerProc, produce, wait_until
from spanwatch.devtools.webhook import Webhook
from spanwatch.pipeline.config import TopicSettings
from tests.support.otel import ToMessages

pytestmark = pytest.mark.broker
MODELS = ("qwen-max", "qwen-plus", "deepseek-v3", "glm-4")
TIMEOUT_S = 4  # alerting.delivery_timeout_s: how long an answer is waited for
RULES = """
groups:
  - name: safety
    rules:
      - alert: PiiInCompletion
        kind: finding
        kinds: [pii]
        roles: [output]
"""
ROUTING = """
route:
  receiver: everyone
  group_by: [alertname, model]
  group_wait: 1s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: everyone
    send_resolved: false
    urls: [{urls}]
"""
CONFIG = """
metrics: {{enabled: false}}
tokens: {{enabled: false}}
anomaly: {{enabled: false}}
alerting: {{rules: ["{rules}"], tick_interval_s: 0.5, delivery_timeout_s: {timeout}}}
worker: {{stats_interval_s: 1}}
"""
# receiver -> (statuses, delays in seconds): one request after another, the last repeats
RECEIVERS = {
    "down": ([503, 503, 503, 503, 503, 200], [0.0]),  # recovers after a few 503s
    "refusing": ([400], [0.0]),  # a configuration error: asked once per alert
    "slow": ([200], [TIMEOUT_S - 2.0]),  # answers within the timeout: delivered once
    # the first answers come after the client gave up (and are not processed: 503), then fine
    "stalling": ([503] * len(MODELS) + [200], [TIMEOUT_S + 3.0] * len(MODELS) + [0.0]),
    "fine": ([200], [0.0]),
}


def pii_messages(models: tuple[str, ...]) -> list[bytes]:
    sink = ToMessages()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(sink))
    tracer = provider.get_tracer("t")
    for i, model in enumerate(models):
        with tracer.start_as_current_span(f"chat {model}") as sp:
            sp.set_attribute("gen_ai.operation.name", "chat")
            sp.set_attribute("gen_ai.request.model", model)
            sp.set_attribute("gen_ai.output.messages", f"您的手机号是1391234{i:04d}，已登记")
    return sink.messages


def test_every_alert_reaches_each_recovering_receiver_once(tmp_path: Path) -> None:
    with ExitStack() as stack:
        hooks = {
            name: stack.enter_context(Webhook(statuses, delays))
            for name, (statuses, delays) in RECEIVERS.items()
        }
        broker = stack.enter_context(
            EmbeddedBroker(
                topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
            )
        )
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "r.yaml").write_text(RULES)
        urls = ", ".join(f'"json://127.0.0.1:{h.port}/{n}"' for n, h in hooks.items())
        (rules / "am.yaml").write_text(ROUTING.format(urls=urls))
        config = tmp_path / "sw.yaml"
        config.write_text(CONFIG.format(rules=rules, timeout=TIMEOUT_S))
        w = WorkerProc(broker.bootstrap, tmp_path / "w", app_id="sw-receivers", config=config)
        w.start(90)
        try:
            produce(broker.bootstrap, "otlp_spans", [(b"k", m) for m in pii_messages(MODELS)])
            assert wait_until(
                lambda: all(
                    len(h.answered()) >= len(MODELS) for n, h in hooks.items() if n != "refusing"
                ),
                180,
            ), {n: [r["status"] for r in h.requests] for n, h in hooks.items()}
            w.wait_drained(120)  # nothing left to deliver: a duplicate would be out by now
            events = {
                event: w.metric("spanwatch_alerting_events_total", event=event)
                for event in ("notifications_sent", "notifications_config_error")
            }
        finally:
            w.stop()
    titles = {name: sorted(r["body"]["title"] for r in h.answered()) for name, h in hooks.items()}
    want = sorted(f"[FIRING:1] PiiInCompletion (model={m})" for m in MODELS)
    for name in ("down", "slow", "stalling", "fine"):
        assert titles[name] == want, (name, titles[name])
    refused = sorted(r["body"]["title"] for r in hooks["refusing"].requests)
    assert refused == want  # once each: a 400 is never retried
    assert len(hooks["down"].answered(ok=False)) == 5  # retried through the outage
    assert len(hooks["stalling"].answered(ok=False)) == len(MODELS)  # each timed out once
    assert events == {
        "notifications_sent": 4 * len(MODELS),
        "notifications_config_error": len(MODELS),
    }
