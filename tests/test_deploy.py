"""The production stack cannot start here (no Docker engine): check what can be checked."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_compose_services_and_mounted_files_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "kafka-init", "otel-collector", "spanwatch"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["otel-collector"]["image"].startswith("otel/opentelemetry-collector-contrib:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for svc in services.values():
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), src
    assert (ROOT / "Dockerfile").exists()


def test_collector_config_uses_the_kafka_exporter_as_spanwatch_expects() -> None:
    cfg = yaml.safe_load((ROOT / "deploy" / "otelcol.yaml").read_text())
    kafka = cfg["exporters"]["kafka"]
    assert kafka["traces"] == {"topic": "otlp_spans", "encoding": "otlp_proto"}
    assert kafka["partition_traces_by_id"] is True
    assert kafka["producer"]["max_message_bytes"] <= 1_000_000
    pipeline = cfg["service"]["pipelines"]["traces"]
    assert pipeline["exporters"] == ["kafka"] and "otlp" in pipeline["receivers"]
    assert set(pipeline["processors"]) <= set(cfg["processors"])


def test_worker_config_loads_with_the_kafka_profile() -> None:
    s = load_settings(ROOT / "deploy" / "spanwatch.yaml")
    assert s.kafka.profile == "kafka" and s.kafka.bootstrap_servers == "kafka:9092"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    init = compose["services"]["kafka-init"]["command"][0]
    for topic in s.topics.all_topics():
        assert topic in init
    assert f"--partitions {s.topics.partitions}" in init
    for topic in s.topics.single_partition_topics():
        assert f"--topic {topic} --partitions 1 " in init
    assert s.alerting.rules == (Path("/etc/spanwatch/rules"),)
    assert "./rules:/etc/spanwatch/rules:ro" in compose["services"]["spanwatch"]["volumes"]
