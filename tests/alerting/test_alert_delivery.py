"""Delivery through apprise to a local server standing in for the Slack and DingTalk webhooks:
request bodies, 5xx then success, a 404 (configuration error), no target, secrets kept out of
messages."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from apprise.plugins.dingtalk import NotifyDingTalk
from apprise.plugins.slack import NotifySlack

from spanwatch.devtools.webhook import Webhook
from spanwatch.pipeline.alerting import notify
from spanwatch.pipeline.alerting.notify import (
    Deliverer,
    Delivery,
    classify,
    deliver,
    format_message,
    resolve_url,
)
from spanwatch.pipeline.alerting.routing import Receiver
from tests.support.apprise_results import failed_call

ALERTS = [
    {
        "status": "firing",
        "alertname": "SlowTTFT",
        "labels": {
            "alertname": "SlowTTFT",
            "severity": "warning",
            "model": "qwen-max",
            "service": "chat",
        },
        "value": 4.1,
        "since": 1_790_000_000.0,
        "annotations": {"summary": "TTFT p95 4.1 s, expected 0.8-1.3 s"},
        "trace_url": "http://jaeger/trace/abc123",
    },
    {
        "status": "resolved",
        "alertname": "SlowTTFT",
        "labels": {
            "alertname": "SlowTTFT",
            "severity": "warning",
            "model": "qwen-plus",
            "service": "chat",
        },
        "value": 0.9,
        "since": None,
        "annotations": {"summary": "TTFT p95 back to 0.9 s"},
        "trace_url": "",
    },
]
SLACK_URL = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"


@pytest.fixture()
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Webhook:
    with Webhook() as hook:
        monkeypatch.setattr(NotifySlack, "webhook_url", f"{hook.base}/services")
        monkeypatch.setattr(
            NotifyDingTalk, "notify_url", hook.base + "/robot/send?access_token={token}"
        )
        yield hook


def test_slack_markdown_body(endpoints: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK", SLACK_URL)
    r = Receiver("slack", ("${SLACK_WEBHOOK}",))
    title, body = format_message(r, {"alertname": "SlowTTFT", "service": "chat"}, ALERTS)
    assert deliver(r, "${SLACK_WEBHOOK}", title, body).outcome == "ok"
    (req,) = endpoints.requests
    assert req["path"] == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    text = str(req["body"])
    assert "[FIRING:1] SlowTTFT (service=chat)" in text
    assert "TTFT p95 4.1 s, expected 0.8-1.3 s" in text
    assert "<http://jaeger/trace/abc123|example trace>" in text  # Slack link syntax
    assert "TTFT p95 back to 0.9 s" in text  # the resolved one


def test_dingtalk_markdown_with_mentions(endpoints: Webhook) -> None:
    r = Receiver(
        "oncall", ("dingtalk://abcdefghijklmnopqrstuvwxyz0123456789",), mentions=("13800000000",)
    )
    title, body = format_message(r, {"alertname": "SlowTTFT"}, ALERTS)
    assert deliver(r, r.urls[0], title, body).outcome == "ok"
    (req,) = endpoints.requests
    assert req["path"].startswith("/robot/send?access_token=abcdefghijklmnopqrstuvwxyz")
    msg = req["body"]
    assert msg["msgtype"] == "markdown"
    assert msg["markdown"]["title"] == "[FIRING:1] SlowTTFT"
    assert "**SlowTTFT** [warning] model=qwen-max service=chat" in msg["markdown"]["text"]
    assert "[example trace](http://jaeger/trace/abc123)" in msg["markdown"]["text"]
    assert msg["markdown"]["text"].rstrip().endswith("@13800000000")
    assert msg["at"]["atMobiles"] == ["13800000000"]


def test_5xx_is_retry_then_success(endpoints: Webhook) -> None:
    endpoints.statuses[:] = [500, 503, 200]
    r = Receiver("json", (f"json://127.0.0.1:{endpoints.port}/hook",))
    outcomes = [deliver(r, r.urls[0], "t", "b").outcome for _ in range(3)]
    assert outcomes == ["retry", "retry", "ok"]
    assert [q["status"] for q in endpoints.requests] == [500, 503, 200]


def test_404_is_a_configuration_error(endpoints: Webhook) -> None:
    endpoints.statuses[:] = [404]
    r = Receiver("json", (f"json://127.0.0.1:{endpoints.port}/hook",))
    d = deliver(r, r.urls[0], "t", "b")
    assert d.outcome == "config" and "HTTP 404" in d.error


def test_unreachable_is_retry_and_bad_url_or_env_is_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = Receiver("x", ("json://127.0.0.1:9/hook",))
    assert deliver(r, r.urls[0], "t", "b").outcome == "retry"
    assert deliver(r, "nosuch://x", "t", "b").outcome == "config"
    monkeypatch.delenv("NOPE_URL", raising=False)
    d = deliver(r, "${NOPE_URL}", "t", "b")
    assert d.outcome == "config" and "NOPE_URL is not set" in d.error


def test_delivery_never_logs_the_url(caplog: pytest.LogCaptureFixture, endpoints: Webhook) -> None:
    caplog.set_level(logging.INFO)
    r = Receiver("x", ("json://127.0.0.1:9/SECRETTOKEN123",))
    assert deliver(r, r.urls[0], "t", "b").outcome == "retry"
    endpoints.statuses[:] = [404]
    r = Receiver("y", (f"json://127.0.0.1:{endpoints.port}/SECRETTOKEN456",))
    assert deliver(r, r.urls[0], "t", "b").outcome == "config"
    assert "SECRETTOKEN" not in caplog.text


def test_classify_reads_only_the_calls_own_result() -> None:
    assert classify(None).outcome == "config"
    assert classify(True).outcome == "ok"
    assert classify(failed_call("error=429.")).outcome == "retry"
    assert classify(failed_call("Failed: Forbidden - error=403.")).outcome == "config"
    assert classify(failed_call(status="TIMEOUT")) == Delivery("retry", "timeout")
    no_answer = classify(failed_call("A Connection error occurred sending JSON notification"))
    assert no_answer.outcome == "retry"


def test_resolve_url_adds_mentions_as_targets() -> None:
    r = Receiver("d", (), mentions=("139",))
    assert resolve_url(r, "dingtalk://tok?x=1") == "dingtalk://tok/139?x=1"
    assert "Receiver(name='d', urls=<0 secret>" in repr(r)


def test_a_timeout_never_takes_a_neighbours_status() -> None:
    """Deliveries run in parallel threads. apprise reports a status only in a log line of one
    process-wide logger; a timed-out attempt used to read a neighbour's ``error=400`` there and
    was dropped as a configuration error. Here the refusal runs entirely while the slow
    receiver's attempt waits for its answer."""
    import threading

    with Webhook(statuses=[200], delays=[3.0]) as slow, Webhook(statuses=[400]) as refusing:
        slow_r = Receiver("slow", (f"json://127.0.0.1:{slow.port}/slow",))
        refusing_r = Receiver("refusing", (f"json://127.0.0.1:{refusing.port}/no",))
        result: list[object] = []
        attempt = threading.Thread(
            target=lambda: result.append(deliver(slow_r, slow_r.urls[0], "t", "b", timeout_s=1))
        )
        attempt.start()
        assert slow.requested.wait(10)  # the slow attempt is waiting for its answer
        refused = deliver(refusing_r, refusing_r.urls[0], "t", "b")
        attempt.join(15)
    assert refused.outcome == "config" and "HTTP 400" in refused.error
    (timed_out,) = result
    assert isinstance(timed_out, Delivery) and timed_out.outcome == "retry"


def test_the_answer_is_awaited_for_the_delivery_timeout() -> None:
    """apprise gives up on an answer after 4 s by default; a receiver that answers in 5 s is
    delivered once when the delivery timeout allows it, instead of timing out and being sent
    again (a duplicate at a receiver that did process the first request)."""
    with Webhook(delays=[5.0]) as hook:
        r = Receiver("slow", (f"json://127.0.0.1:{hook.port}/slow",))
        assert deliver(r, r.urls[0], "t", "b", timeout_s=8).outcome == "ok"
    assert len(hook.requests) == 1


def test_the_deliverer_runs_each_delivery_in_a_thread_with_a_guard(
    endpoints: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's side of a delivery: the console target printed, an unknown receiver a
    configuration error, a URL delivered in a thread, and a thread that never returns given
    up on (retried later) instead of holding its slot."""
    printed: list[str] = []
    deliverer = Deliverer(2.0, console=printed.append, threads=2)
    hook = Receiver("hook", (f"json://127.0.0.1:{endpoints.port}/hook",), console=True)
    receivers = {"hook": hook}

    async def run() -> list[Delivery]:
        return [
            await deliverer(receivers, "hook", -1, "title", "body"),
            await deliverer(receivers, "nope", 0, "t", "b"),
            await deliverer(receivers, "hook", 0, "t", "b"),
        ]

    assert asyncio.run(run()) == [
        Delivery("ok"),
        Delivery("config", "unknown receiver 'nope'"),
        Delivery("ok"),
    ]
    assert printed == ["title\nbody"] and len(endpoints.requests) == 1

    wedged = threading.Event()
    monkeypatch.setattr(notify, "deliver", lambda *a: wedged.wait(30) or Delivery("ok"))
    monkeypatch.setattr(notify, "DELIVERY_GUARD", 0)
    monkeypatch.setattr(notify, "DELIVERY_GRACE_S", 0.2)
    try:
        got = asyncio.run(deliverer(receivers, "hook", 0, "t", "b"))
    finally:
        wedged.set()
    assert got == Delivery("retry", "delivery thread did not return")
