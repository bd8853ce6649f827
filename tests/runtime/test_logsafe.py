"""No secret, receiver URL or payload byte in a log line: third-party loggers stop at INFO,
every secret of the configuration is replaced by ``<secret>``, apprise stays out."""

from __future__ import annotations

import io
import logging

import pytest

from spanwatch.pipeline.alerting.loader import load_rules
from spanwatch.pipeline.config import Settings
from spanwatch.runtime.logsafe import REDACTED, SafeLogFilter, install, url_secrets
from spanwatch.runtime.worker import config_secrets


def _line(f: SafeLogFilter, name: str, level: int, msg: str, *args: object) -> str | None:
    record = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    return record.getMessage() if f.filter(record) else None


def test_url_parts_that_may_be_tokens() -> None:
    found = url_secrets("json://hooks.example:8080/down/Tk7hQ2mV9x?key=abcdef123&x=1")
    assert {"/down/Tk7hQ2mV9x", "Tk7hQ2mV9x", "abcdef123"} <= found
    assert "down" not in found and "1" not in found  # too short to be a secret
    assert "D3adBeefToken42" in url_secrets("dingtalk://D3adBeefToken42")
    assert "s3cr3tpass" in url_secrets("https://user:s3cr3tpass@hooks.example/x")


def test_third_party_debug_is_dropped_and_secrets_are_masked() -> None:
    f = SafeLogFilter(url_secrets("json://127.0.0.1:9/down/Tk7hQ2mV9x"))
    assert _line(f, "urllib3.connectionpool", logging.DEBUG, "POST /down/Tk7hQ2mV9x") is None
    assert _line(f, "aiokafka.producer", logging.DEBUG, "send %r", b"13912345678") is None
    assert _line(f, "spanwatch.ingest", logging.DEBUG, "fine") == "fine"
    masked = _line(f, "faust", logging.WARNING, "failed %s", "json://127.0.0.1:9/down/Tk7hQ2mV9x")
    assert masked == f"failed {REDACTED}"
    assert _line(f, "spanwatch.alerting", logging.INFO, "path /down/Tk7hQ2mV9x/") == (
        f"path {REDACTED}/"
    )


def test_install_covers_the_handlers_and_cuts_apprise_off() -> None:
    root = logging.getLogger("logsafe-test-root")
    out = io.StringIO()
    root.addHandler(logging.StreamHandler(out))
    root.setLevel(logging.DEBUG)
    install(root, ["AnotherTokenXyz"])
    child = logging.getLogger("logsafe-test-root.spanwatch")
    child.warning("token AnotherTokenXyz here")
    assert "AnotherTokenXyz" not in out.getvalue() and REDACTED in out.getvalue()
    assert logging.getLogger("apprise").propagate is False


def test_config_secrets_come_from_receivers_kafka_and_judges(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    rules = Path(str(tmp_path)) / "rules"
    rules.mkdir()
    (rules / "am.yaml").write_text(
        "route: {receiver: r}\nreceivers:\n  - name: r\n    urls: ['${HOOK_URL}']\n"
    )
    monkeypatch.setenv("HOOK_URL", "json://hooks.example/down/EnvTokenValue9")
    monkeypatch.setenv("JUDGE_KEY", "sk-judge-0123456789")
    settings = Settings.model_validate(
        {
            "kafka": {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_password": "kafka-pass-42",
            },
            "safety": {"judge": {"url": "http://j/v1", "model": "m", "api_key": "${JUDGE_KEY}"}},
        }
    )
    found = config_secrets(settings, load_rules([rules]))
    assert {"EnvTokenValue9", "kafka-pass-42", "sk-judge-0123456789"} <= found
