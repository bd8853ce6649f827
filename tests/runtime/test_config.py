"""Configuration: strict validation, secrets never shown, broker quirks confined to a profile."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from spanwatch.pipeline.common.errors import ConfigError
from spanwatch.pipeline.config import BROKER_PROFILES, load_settings
from spanwatch.transport.app import create_app, faust_broker_url


def test_defaults_point_at_the_collector_topic() -> None:
    s = load_settings()
    assert s.topics.source == "otlp_spans" and s.kafka.profile == "kafka"


def test_secrets_never_in_repr_or_str() -> None:
    s = load_settings(
        kafka__sasl_password="hunter2-secret",
        kafka__sasl_mechanism="PLAIN",
        kafka__sasl_username="svc",
        kafka__security_protocol="SASL_SSL",
    )
    assert "hunter2-secret" not in repr(s) and "hunter2-secret" not in str(s)
    assert s.kafka.client_config()["sasl.password"] == "hunter2-secret"


def test_every_error_is_reported_with_its_location(tmp_path: Path) -> None:
    """Worker configuration errors name file:line:column, as rule errors do, in file order;
    an unknown key points at the key, with the one it resembles."""
    cfg = tmp_path / "sw.yaml"
    cfg.write_text(
        "kafka:\n  profile: redpanda\n  bogus: 1\ntopics:\n  partitions: 0\n"
        "metrics:\n  max_sereis: 5\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, worker__app_id=7)
    lines = str(err.value).splitlines()[1:]
    assert [line.strip().split(": ", 2)[:2] for line in lines] == [
        ["worker.app_id", "Input should be a valid string (from the command line)"],
        [f"{cfg}:2:12", "kafka.profile"],
        [f"{cfg}:3:3", "kafka.bogus"],
        [f"{cfg}:5:15", "topics.partitions"],
        [f"{cfg}:7:3", "metrics.max_sereis"],
    ]
    assert "unknown key 'max_sereis' (did you mean 'max_series'?)" in lines[-1]


@pytest.mark.parametrize("content", ["kafka: [1, 2", "- a list\n- at the top\n"])
def test_broken_yaml_is_an_error_not_defaults(tmp_path: Path, content: str) -> None:
    cfg = tmp_path / "sw.yaml"
    cfg.write_text(content)
    with pytest.raises(ConfigError):
        load_settings(cfg)


def test_tansu_quirks_stay_in_the_tansu_profile() -> None:
    kafka, tansu = BROKER_PROFILES["kafka"], BROKER_PROFILES["tansu"]
    assert kafka.faust == {} and kafka.producer == {} and not kafka.create_topics
    assert tansu.faust["producer_max_batch_size"] == 16 and tansu.create_topics
    real = create_app(load_settings(kafka__bootstrap_servers="k1:9092,k2:9092"))
    dev = create_app(load_settings(kafka__profile="tansu"))
    assert real.conf.broker_session_timeout != 6.0
    assert real.conf.producer_max_batch_size != 16
    assert dev.conf.broker_session_timeout == 6.0 and dev.conf.producer_max_batch_size == 16
    assert [str(u) for u in real.conf.broker] == ["kafka://k1:9092", "kafka://k2:9092"]


def test_broker_url_form() -> None:
    assert faust_broker_url("a:1, b:2") == "kafka://a:1;b:2"


def test_the_worker_collects_cycles_less_often_unless_told_otherwise(tmp_path: Path) -> None:
    from spanwatch.runtime.worker import tune_gc

    before = gc.get_threshold()
    try:
        tune_gc(load_settings().worker.gc_threshold)
        assert gc.get_threshold() == (100_000, 50, 100)
        assert gc.get_freeze_count() > 0  # what exists at start is never scanned again
        gc.set_threshold(*before)
        cfg = tmp_path / "sw.yaml"
        cfg.write_text("worker: {gc_threshold: null}\n")
        tune_gc(load_settings(cfg).worker.gc_threshold)
        assert gc.get_threshold() == before  # Python's default kept
        cfg.write_text("worker: {gc_threshold: [0, 10, 10]}\n")
        with pytest.raises(ConfigError, match=r"worker\.gc_threshold"):
            load_settings(cfg)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.parametrize("text", ["1d", "1.5m", "500 ms", " 4h "])
def test_one_duration_grammar_for_the_configuration_and_the_rules(
    tmp_path: Path, text: str
) -> None:
    """``stale_after: 1d`` was rejected while a rule's ``for: 1d`` passed: both read durations
    with pipeline/common/durations.py now."""
    from spanwatch.pipeline.alerting.loader import load_rules
    from spanwatch.pipeline.common.durations import parse_duration_ns

    conf = tmp_path / "c.yaml"
    conf.write_text(f'alerting:\n  stale_after: "{text}"\n')
    assert load_settings(conf).alerting.stale_after == text
    rule = tmp_path / "r.yaml"
    rule.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        signal: ttft_p95\n"
        f'        threshold: 1\n        for: "{text}"\n'
    )
    (loaded,) = load_rules([rule]).rules
    assert loaded.for_s * 1e9 == parse_duration_ns(text)
    for bad in ("5x", "-1s", "1 week"):
        with pytest.raises(ValueError, match=r"bad duration .*: use a positive number with ms"):
            parse_duration_ns(bad)
    assert parse_duration_ns(0, zero=True) == 0  # a rule may say for: 0
