"""The production stack cannot start here (no Docker engine): check what can be checked."""

from __future__ import annotations

from pathlib import Path

import yaml

from spanwatch.pipeline.config import TopicSettings, load_settings
from tests.support.paths import ROOT


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
    assert kafka["producer"]["max_message_bytes"] == 16 * 2**20  # see test_one_size_limit
    pipeline = cfg["service"]["pipelines"]["traces"]
    assert pipeline["exporters"] == ["kafka"] and "otlp" in pipeline["receivers"]
    assert set(pipeline["processors"]) <= set(cfg["processors"])
    # engine gauges: out to the metrics topic spanwatch reads; scraped only with the overlay
    # (the stack has no engine: a scrape of vllm:8000 would fail forever)
    assert kafka["metrics"] == {"topic": "otlp_metrics", "encoding": "otlp_proto"}
    metrics = cfg["service"]["pipelines"]["metrics"]
    assert metrics["exporters"] == ["kafka"] and metrics["receivers"] == ["otlp"]
    assert "prometheus" not in cfg["receivers"]
    assert TopicSettings().metrics_source == "otlp_metrics"


def test_the_engine_scrape_is_an_overlay_of_the_collector_config() -> None:
    overlay = yaml.safe_load((ROOT / "deploy" / "otelcol-engines.yaml").read_text())
    assert set(overlay) == {"receivers", "service"}  # adds to the base, nothing else
    assert overlay["service"]["pipelines"]["metrics"]["receivers"] == ["otlp", "prometheus"]
    jobs = overlay["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert jobs and all(j["static_configs"][0]["targets"] for j in jobs)
    override = yaml.safe_load((ROOT / "deploy" / "compose.engines.yml").read_text())
    collector = override["services"]["otel-collector"]
    assert collector["command"] == [
        "--config=/etc/otelcol-contrib/config.yaml",
        "--config=/etc/otelcol-contrib/engines.yaml",
    ]
    for vol in collector["volumes"]:
        assert (ROOT / vol.split(":", 1)[0]).exists(), vol


def test_kafka_keeps_its_log_in_its_volume() -> None:
    """apache/kafka uses none of its default server.properties once any setting comes from
    the environment: without KAFKA_LOG_DIRS the log lands outside the data volume."""
    kafka = _compose()["services"]["kafka"]
    mount = next(v.split(":")[1] for v in kafka["volumes"] if v.startswith("kafka-data:"))
    assert kafka["environment"]["KAFKA_LOG_DIRS"] == mount


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


def _compose() -> dict:  # type: ignore[type-arg]
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_kafka_cluster_id_is_a_base64url_uuid() -> None:
    """KRaft's storage format wants Uuid.toString(): 16 bytes, base64url without padding."""
    import base64
    import re

    cid = _compose()["services"]["kafka"]["environment"]["CLUSTER_ID"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid), cid
    raw = base64.urlsafe_b64decode(cid + "==")
    assert len(raw) == 16
    # Kafka reserves the all-zero id and the "metadata topic" id (1); it rejects them
    assert int.from_bytes(raw, "big") not in (0, 1)


def test_one_size_limit_end_to_end() -> None:
    services = _compose()["services"]
    broker_max = int(services["kafka"]["environment"]["KAFKA_MESSAGE_MAX_BYTES"])
    replica_max = int(services["kafka"]["environment"]["KAFKA_REPLICA_FETCH_MAX_BYTES"])
    init = services["kafka-init"]["command"][0]
    topic_max = int(init.split("max.message.bytes=")[1].split()[0])
    col = yaml.safe_load((ROOT / "deploy" / "otelcol.yaml").read_text())
    producer_max = col["exporters"]["kafka"]["producer"]["max_message_bytes"]
    grpc_max = col["receivers"]["otlp"]["protocols"]["grpc"]["max_recv_msg_size_mib"] * 2**20
    http_max = col["receivers"]["otlp"]["protocols"]["http"]["max_request_body_size"]
    ingest_max = load_settings(ROOT / "deploy" / "spanwatch.yaml").ingest.max_message_bytes
    # what the collector accepts, it can write; what it writes, the broker and topics keep;
    # what they keep, spanwatch reads (and larger ones go to the dead-letter topic)
    assert (
        grpc_max == http_max == producer_max == broker_max == topic_max == replica_max == ingest_max
    ), (grpc_max, http_max, producer_max, broker_max, topic_max, ingest_max)


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = _compose()["services"]
    for name, svc in services.items():
        if name == "kafka-init":  # a one-shot job: its exit status is its health
            continue
        if name == "otel-collector":  # distroless: probed from its sidecar
            probe = services["otel-collector-health"]["healthcheck"]["test"]
            col = yaml.safe_load((ROOT / "deploy" / "otelcol.yaml").read_text())
            port = col["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1]
            assert f"http://otel-collector:{port}/" in probe
            assert "health_check" in col["service"]["extensions"]
            continue
        assert "healthcheck" in svc, name
        assert svc["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_worker_healthcheck_is_a_real_command_on_the_readiness_port() -> None:
    from spanwatch.cli import build_parser

    test = _compose()["services"]["spanwatch"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "spanwatch", "health"]
    args = build_parser().parse_args(test[2:])
    port = load_settings(ROOT / "deploy" / "spanwatch.yaml").metrics.prometheus_port
    assert args.url == f"http://127.0.0.1:{port}/readyz"


def test_prometheus_scrapes_every_worker_on_its_metrics_port() -> None:
    services = _compose()["services"]
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert (
        "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in services["prometheus"]["volumes"]
    )
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    port = load_settings(ROOT / "deploy" / "spanwatch.yaml").metrics.prometheus_port
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["spanwatch"] and sd["port"] == port and job["metrics_path"] == "/metrics"


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the shipped Grafana dashboard."""
    import json

    dash = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "spanwatch.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def alert_rule_queries() -> list[str]:
    """Every expression of the shipped Prometheus alert rule examples."""
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    services = _compose()["services"]
    graf = services["grafana"]
    assert graf["image"].startswith("grafana/grafana:")
    assert graf["depends_on"]["prometheus"]["condition"] == "service_healthy"
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in graf["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (ds,) = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )["datasources"]
    prom_port = services["prometheus"]["ports"][0].split(":")[-1]
    assert ds["type"] == "prometheus" and ds["url"] == f"http://prometheus:{prom_port}"
    (provider,) = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/spanwatch.yaml").read_text()
    )["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    home = graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == provider["options"]["path"] + "/spanwatch.json"
    assert len(dashboard_queries()) >= 15


def test_prometheus_loads_the_alert_rule_examples() -> None:
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1) for v in _compose()["services"]["prometheus"]["volumes"]
    )
    assert mounts["./deploy/prometheus-alerts.yml"] in prom["rule_files"]
    assert alert_rule_queries()


def test_promql_names_are_read_as_prometheus_would() -> None:
    from tests.support.promql import metric_names

    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{x="y(z)"}[5m]))) '
        "/ on (model) group_left sum without (le) (b_total) > bool 3 and c"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_the_stack_serves_the_web_view_behind_a_token() -> None:
    ui = _compose()["services"]["spanwatch-ui"]
    assert ui["command"][-5:] == ["ui", "--bind", "0.0.0.0", "--port", "8080"]
    assert "SPANWATCH_UI_TOKEN" in ui["environment"]
    settings = load_settings(ROOT / "deploy" / "spanwatch.yaml")
    assert settings.ui.token is not None
    assert settings.ui.token.get_secret_value() == "${SPANWATCH_UI_TOKEN}"
    assert "8080:8080" in ui["ports"] and "healthz" in " ".join(ui["healthcheck"]["test"])
