"""Alerting from Kafka: spans with PII in completions -> safety findings -> rules -> the alert
manager -> apprise -> a local webhook. Two workers give one notification; a notification that
is pending when its worker stops is delivered by the next one. Silences from the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import WorkerProc, consume_until, produce, wait_until
from spanwatch.devtools.webhook import Webhook
from spanwatch.pipeline.config import TopicSettings
from tests.support.otel import ToMessages

pytestmark = pytest.mark.broker
RULES = """
groups:
  - name: safety
    rules:
      - alert: PiiInCompletion
        kind: finding
        kinds: [pii]
        roles: [output]
        labels: {severity: warning}
        annotations: {summary: "{{ labels.category }} in {{ labels.model }} ({{ count }}x)"}
"""
ROUTING = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 4h
receivers:
  - name: hook
    urls: ["json://127.0.0.1:{port}/hook"]
"""
CONFIG = """
metrics: {{enabled: false}}
tokens: {{enabled: false}}
anomaly: {{enabled: false}}
alerting: {{rules: ["{rules}"], tick_interval_s: 0.5}}
worker: {{stats_interval_s: 1}}
"""


def pii_messages(n: int) -> list[bytes]:
    sink = ToMessages()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(sink))
    tracer = provider.get_tracer("t")
    for i in range(n):
        with tracer.start_as_current_span("chat qwen-max") as sp:
            sp.set_attribute("gen_ai.operation.name", "chat")
            sp.set_attribute("gen_ai.request.model", "qwen-max")
            sp.set_attribute("gen_ai.output.messages", f"您的手机号是1391234{i:04d}，已登记")
    return sink.messages


def setup(tmp_path: Path, port: int) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(RULES)
    (rules / "am.yaml").write_text(ROUTING.format(port=port))
    config = tmp_path / "sw.yaml"
    config.write_text(CONFIG.format(rules=rules))
    return config


def test_two_workers_one_alert_group_one_notification(tmp_path: Path) -> None:
    with (
        Webhook() as hook,
        EmbeddedBroker(
            topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
        ) as b,
    ):
        config = setup(tmp_path, hook.port)
        workers = [
            WorkerProc(b.bootstrap, tmp_path / f"w{i}", app_id="sw-alerts", config=config).launch()
            for i in range(2)
        ]
        try:
            for w in workers:
                w.wait_ready(90)
            produce(
                b.bootstrap,
                "otlp_spans",
                [(f"k{i}".encode(), m) for i, m in enumerate(pii_messages(6))],
            )
            assert wait_until(lambda: len(hook.requests) >= 1, 90), "no notification"
            for w in workers:  # everything processed and delivered: a duplicate would be out
                w.wait_drained(60)
            alerts = consume_until(b.bootstrap, ["spanwatch.alerts"], lambda ms: False, timeout=5)
        finally:
            for w in workers:
                w.stop()
    assert len(hook.requests) == 1
    body = hook.requests[0]["body"]
    assert body["title"] == "[FIRING:1] PiiInCompletion"
    assert "PiiInCompletion" in body["message"] and "cn_mobile in qwen-max" in body["message"]
    assert "1391234" not in str(body)  # the number itself never leaves the worker
    recs = [orjson.loads(m.value()) for m in alerts]
    assert [r["status"] for r in recs].count("firing") == 1
    assert recs[0]["labels"]["category"] == "cn_mobile" and recs[0]["trace_id"]


def test_pending_notification_survives_a_restart(tmp_path: Path) -> None:
    with (
        Webhook([500]) as hook,
        EmbeddedBroker(
            topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
        ) as b,
    ):
        config = setup(tmp_path, hook.port)
        first = WorkerProc(b.bootstrap, tmp_path / "a", app_id="sw-pending", config=config).start(
            90
        )
        try:
            produce(b.bootstrap, "otlp_spans", [(b"k", m) for m in pii_messages(1)])
            assert wait_until(lambda: len(hook.requests) >= 2, 90), "no retries"
            assert first.metric("spanwatch_notifications_pending") >= 1  # kept for retry
        finally:
            first.stop()
        failed = len(hook.requests)
        hook.statuses[:] = [200]
        second = WorkerProc(b.bootstrap, tmp_path / "b", app_id="sw-pending", config=config).start(
            90
        )
        try:  # the outbox came back from the table changelog; the next try succeeds
            assert wait_until(lambda: any(r["status"] == 200 for r in hook.requests), 90)
            second.wait_drained(60)
        finally:
            second.stop()
    ok = [r for r in hook.requests if r["status"] == 200]
    assert len(ok) == 1 and failed >= 2
    assert ok[0]["body"]["title"] == "[FIRING:1] PiiInCompletion"


def test_silence_cli_round_trip(tmp_path: Path) -> None:
    with (
        Webhook() as hook,
        EmbeddedBroker(
            topics=TopicSettings().all_topics(), partitions=4, log_path=tmp_path / "tansu.log"
        ) as b,
    ):
        config = setup(tmp_path, hook.port)
        w = WorkerProc(b.bootstrap, tmp_path / "w", app_id="sw-silence", config=config).start(90)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "spanwatch.cli",
                    "silence",
                    *args,
                    "--broker",
                    b.bootstrap,
                    "--profile",
                    "tansu",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )

        try:
            added = cli(
                "add",
                "-m",
                'alertname="PiiInCompletion"',
                "-d",
                "1h",
                "--author",
                "sre",
                "--comment",
                "known test data",
            )
            assert added.returncode == 0, added.stderr
            sid = added.stdout.strip()
            assert wait_until(lambda: sid in cli("list").stdout, 60)
            produce(b.bootstrap, "otlp_spans", [(b"k", m) for m in pii_messages(2)])
            alerts = consume_until(
                b.bootstrap, ["spanwatch.alerts"], lambda ms: len(ms) >= 1, timeout=60
            )
            assert orjson.loads(alerts[0].value())["silenced"] is True
            w.wait_drained(60)
            assert hook.requests == []  # silenced: recorded, not notified
            assert cli("expire", sid).returncode == 0
            assert wait_until(lambda: "no active silences" in cli("list").stdout, 60)
            assert wait_until(lambda: len(hook.requests) == 1, 90)  # notified once unsilenced
            assert sid in cli("list", "--all").stdout
        finally:
            w.stop()
    bad = subprocess.run(
        [sys.executable, "-m", "spanwatch.cli", "silence", "add", "-m", "model=qwen"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "bad matcher" in bad.stderr
