"""spanwatch configuration: one pydantic model, defaults in one place, secrets as ``SecretStr``.

Each stage owns its section (its defaults and validation live next to its code); this module
holds the deployment's own sections (Kafka, topics, worker) and composes them all.

Loaded from an optional YAML file (``--config``) and overridden by command-line flags. Unknown
keys are errors (``extra="forbid"``), and ``repr()`` never shows a secret.

Broker quirks live in :data:`BROKER_PROFILES`: the ``tansu`` profile carries every setting the
development broker needs (see ``docs/ARCHITECTURE.md``); the ``kafka`` profile is plain Apache
Kafka and carries none of them.
"""

from __future__ import annotations

import difflib
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from .alerting.settings import AlertingSettings
from .anomaly.settings import AnomalySettings
from .clusters.labels import LabelSettings
from .clusters.prompts import ClusterSettings
from .common.clock import WallClock
from .common.durations import parse_duration_ns
from .common.errors import ConfigError
from .common.settings import Duration, SettingsModel, expand_env
from .common.yamlpos import Located, YamlError, load_with_positions
from .engine.gauges import EngineSettings
from .ingest.settings import IngestSettings, NormalizeSettings
from .safety.settings import JudgeConfig, SafetySettings
from .stitch.stitcher import StitchSettings
from .tokens.settings import BudgetSettings, TokensSettings
from .windows.golden import SeriesKeyer
from .windows.merge import MergeStage
from .windows.preaggregate import PreAggregator
from .windows.settings import MetricsSettings

__all__ = [  # each stage's section, composed here; the names stay importable from here
    "BROKER_PROFILES",
    "AlertingSettings",
    "AnomalySettings",
    "BrokerProfile",
    "BudgetSettings",
    "Duration",
    "IngestSettings",
    "JudgeConfig",
    "KafkaSettings",
    "MetricsSettings",
    "NormalizeSettings",
    "SafetySettings",
    "Settings",
    "StitchSettings",
    "TokensSettings",
    "TopicSettings",
    "UiSettings",
    "WorkerSettings",
    "expand_env",
    "load_settings",
]


@dataclass(frozen=True)
class BrokerProfile:
    """Client settings that depend on the broker implementation, not on the deployment."""

    name: str
    faust: dict[str, Any] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)  # confluent-kafka producer config
    consumer: dict[str, Any] = field(default_factory=dict)  # confluent-kafka consumer config
    create_topics: bool = False  # the worker creates its topics itself at start
    fetch_max_wait_ms: int | None = None  # cap of faust's fetch long-poll (None: faust's 1500)


BROKER_PROFILES: dict[str, BrokerProfile] = {
    # Apache Kafka (and compatible services that behave like it): library defaults.
    "kafka": BrokerProfile("kafka"),
    # Tansu 0.6 (development, tests, demo). Each setting answers one measured quirk:
    "tansu": BrokerProfile(
        "tansu",
        faust={
            # group joins take ~half the session timeout; 6 s joins in ~3 s
            "broker_session_timeout": 6.0,
            "broker_heartbeat_interval": 1.0,
            # ListOffsets(LATEST) is wrong for multi-record batches, which makes faust
            # restore stale tables: one record per produced batch avoids it
            "producer_max_batch_size": 16,
            # 'latest' relies on the broken end offset
            "consumer_auto_offset_reset": "earliest",
        },
        producer={"batch.num.messages": 1, "linger.ms": 0},
        consumer={
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "fetch.wait.max.ms": 100,
        },
        # unknown topics are auto-created with 4 partitions: create ours explicitly
        create_topics=True,
        # a fetch is answered when its max wait is over, not when records arrive: each hop
        # through a topic would cost up to faust's 1.5 s
        fetch_max_wait_ms=100,
    ),
}


class KafkaSettings(SettingsModel):
    bootstrap_servers: str = "localhost:9092"
    profile: Literal["kafka", "tansu"] = "kafka"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # TLS (security_protocol SSL or SASL_SSL): PEM files; the system's CAs when ssl_cafile is
    # unset. ssl_check_hostname: false only for brokers whose certificate lacks their name.
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None  # client certificate (mutual TLS)
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    # Cap faust's fetch long-poll (faust passes a fixed 1500 ms). Kafka answers a fetch as soon
    # as records arrive; Tansu only when the wait is over, so each consumer hop could cost up
    # to 1.5 s there. None: the profile's value (tansu: 100 ms; kafka: faust's own).
    fetch_max_wait_ms: int | None = Field(None, ge=1, le=60_000)

    def client_config(self) -> dict[str, Any]:
        """confluent-kafka connection settings (the password stays a secret until here)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.tls:
            if self.ssl_cafile:
                conf["ssl.ca.location"] = str(self.ssl_cafile)
            if self.ssl_certfile:
                conf["ssl.certificate.location"] = str(self.ssl_certfile)
            if self.ssl_keyfile:
                conf["ssl.key.location"] = str(self.ssl_keyfile)
            if self.ssl_key_password is not None:
                conf["ssl.key.password"] = self.ssl_key_password.get_secret_value()
            conf["ssl.endpoint.identification.algorithm"] = (
                "https" if self.ssl_check_hostname else "none"
            )
        return conf

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and not self.sasl_mechanism:
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism "
                "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        if self.sasl_mechanism and not sasl:
            raise ValueError(
                f"sasl_mechanism {self.sasl_mechanism} needs security_protocol "
                "SASL_PLAINTEXT or SASL_SSL"
            )
        files = {
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
        }
        if any(files.values()) and not self.tls:
            raise ValueError(
                f"{', '.join(k for k, v in files.items() if v)} set but "
                f"security_protocol is {self.security_protocol}: use SSL or SASL_SSL"
            )
        for key, path in files.items():
            if path is not None and not path.is_file():
                raise ValueError(f"{key}: no such file {str(path)!r}")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ValueError("ssl_certfile and ssl_keyfile go together (mutual TLS)")
        return self


class TopicSettings(SettingsModel):
    source: str = "otlp_spans"  # the collector's Kafka exporter default
    # the exporter's metrics topic: vLLM / SGLang gauges (pipeline/engine/gauges.py); "" disables
    metrics_source: str = "otlp_metrics"
    spans: str = "spanwatch.spans"  # normalized records; "" disables
    deadletter: str = "spanwatch.deadletter"
    partials: str = "spanwatch.partials"  # internal: partial windows keyed by series
    metrics: str = "spanwatch.metrics"  # closed golden-signal windows
    tokens: str = "spanwatch.tokens"  # token windows, black-hole events, top consumers
    engine: str = "spanwatch.engine"  # closed inference-engine gauge windows
    clusters: str = "spanwatch.clusters"  # closed prompt-cluster windows per application
    labels: str = "spanwatch.labels"  # closed judge-label windows (share of each label)
    pieces: str = "spanwatch.pieces"  # internal: chunked-payload pieces keyed by payload id
    payloads: str = "spanwatch.payloads"  # reassembled payloads ("" disables output)
    findings: str = "spanwatch.findings"  # content-safety findings and judge evaluations
    anomalies: str = "spanwatch.anomalies"  # anomaly scores and anomaly start/end events
    alerting: str = "spanwatch.alerting"  # internal, ONE partition: samples, ticks, silences
    alerts: str = "spanwatch.alerts"  # every alert state change (JSON)
    silences: str = "spanwatch.silences"  # current silences (key: id), for `silence list`
    partitions: int = Field(4, ge=1, le=1024)  # for topics spanwatch creates
    replication_factor: int = Field(1, ge=1)

    def single_partition_topics(self) -> list[str]:
        """Topics that must have exactly one partition (all alert state has one owner)."""
        return [self.alerting, self.silences]

    def all_topics(self) -> list[str]:
        return [
            t
            for t in (
                self.source,
                self.metrics_source,
                self.spans,
                self.deadletter,
                self.partials,
                self.metrics,
                self.tokens,
                self.engine,
                self.clusters,
                self.labels,
                self.pieces,
                self.payloads,
                self.findings,
                self.anomalies,
                self.alerts,
            )
            if t
        ]


class WorkerSettings(SettingsModel):
    app_id: str = "spanwatch"
    data_dir: Path = Path("/tmp/spanwatch-data")
    loglevel: Literal["debug", "info", "warning", "error"] = "info"
    stats_interval_s: float = Field(10.0, gt=0)
    # a stage with unprocessed records whose committed offset has not moved for this long is
    # stalled: /healthz and /readyz answer 503
    stall_after: Duration = "60s"
    # Python's cyclic garbage collector: allocations between young-generation collections,
    # and the two older generations' ratios (Python's default is 700, 10, 10). The worker
    # allocates many short-lived records, almost all freed by reference counting; at the
    # default the collector took ~30% of the core's time (docs/BENCHMARKS.md). Cycles are
    # still collected, just less often. null keeps Python's default.
    gc_threshold: tuple[int, int, int] | None = (100_000, 50, 100)

    @field_validator("gc_threshold")
    @classmethod
    def _gc_threshold(cls, v: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if v is not None and min(v) < 1:
            raise ValueError("every gc_threshold value must be >= 1 (null: Python's default)")
        return v


class UiSettings(SettingsModel):
    """The live web view (``spanwatch ui``, or served by a worker when enabled)."""

    enabled: bool = False  # a worker serves the page too
    port: int = Field(8080, ge=1, le=65535)
    # loopback by default: the page shows prompts' findings, users and costs. Anywhere else
    # needs a token (or allow_anonymous: true, said loudly at start)
    bind: str = "127.0.0.1"
    token: SecretStr | None = None  # "${SPANWATCH_UI_TOKEN}" is read from the environment
    allow_anonymous: bool = False
    lookback: int = Field(2000, ge=0)  # records per output partition read back at start
    # a link for trace ids, e.g. "http://jaeger:16686/trace/{trace_id}" (None: ids only)
    trace_url: str | None = None


class Settings(SettingsModel):
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    ingest: IngestSettings = IngestSettings()
    normalize: NormalizeSettings = NormalizeSettings()
    metrics: MetricsSettings = MetricsSettings()
    tokens: TokensSettings = TokensSettings()
    engine: EngineSettings = EngineSettings()
    clusters: ClusterSettings = ClusterSettings()
    labels: LabelSettings = LabelSettings()
    stitch: StitchSettings = StitchSettings()
    safety: SafetySettings = SafetySettings()
    anomaly: AnomalySettings = AnomalySettings()
    alerting: AlertingSettings = AlertingSettings()
    worker: WorkerSettings = WorkerSettings()
    ui: UiSettings = UiSettings()

    @model_validator(mode="after")
    def _anomaly_window(self) -> Settings:
        window = self.anomaly.window
        if self.anomaly.enabled and window is not None and window not in self.metrics.windows:
            raise ValueError(
                f"anomaly.window {window!r} is not one of "
                f"metrics.windows {list(self.metrics.windows)}"
            )
        return self

    @property
    def profile(self) -> BrokerProfile:
        return BROKER_PROFILES[self.kafka.profile]


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from a YAML file (optional) with dotted overrides, e.g. ``kafka__profile``."""
    data: dict[str, Any] = {}
    located: Located | None = None
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        try:
            located = load_with_positions(text, str(path))
        except YamlError as exc:
            raise ConfigError(str(exc)) from None
        if located.data is not None and not isinstance(located.data, dict):
            raise ConfigError(f"{located.where(())}: top level must be a mapping")
        data = located.data or {}
    given = set()
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition("__")
        data.setdefault(section, {})[key] = value
        given.add((section, key))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        msgs = sorted((_config_problem(e, located, given) for e in exc.errors()), key=_by_position)
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(msgs)) from None


def _config_problem(error: Any, located: Located | None, given: set[tuple[str, str]]) -> str:
    """One validation error as ``file:line:column: key.path: message`` (an unknown key with
    the known ones it resembles); a value from the command line says so."""
    loc = tuple(error["loc"])
    dotted = ".".join(str(p) for p in loc)
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        known = _fields_at(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        msg = f"unknown key {loc[-1]!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if loc[:2] in given or located is None:
        return f"{dotted}: {msg}" + (" (from the command line)" if loc[:2] in given else "")
    key = (*loc, "__key__") if error["type"] == "extra_forbidden" else loc
    return f"{located.where(key)}: {dotted}: {msg}"


def _by_position(problem: str) -> tuple[int, int, str]:
    parts = problem.split(":", 3)
    if len(parts) == 4 and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2]), problem
    return 0, 0, problem


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the settings model at ``loc`` accepts (none known: an empty list)."""
    model: Any = Settings
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def merge_stage(store: MutableMapping[Any, Any], settings: Settings) -> MergeStage:
    """The worker's merge stage over ``store``, as ``settings`` configure it."""
    ms, ts = settings.metrics, settings.tokens
    specs = ms.window_settings().specs
    return MergeStage(
        store,
        lateness_ns=parse_duration_ns(ms.allowed_lateness),
        min_step_ns=min(s.step_ns for s in specs),
        idle_ns=parse_duration_ns(ts.activity_idle_timeout),
        budgets={"trace": ts.trace_budgets.budgets(), "session": ts.session_budgets.budgets()},
        max_tracked=ts.max_tracked,
        flush_interval_s=parse_duration_ns(ms.state_flush_interval) / 1e9,
        lateness_by_kind={
            "engine": parse_duration_ns(settings.engine.allowed_lateness),
            "labels": parse_duration_ns(settings.labels.allowed_lateness),
        },
        clusters=settings.clusters,
    )


def preaggregator(settings: Settings, wall_ns: WallClock) -> PreAggregator:
    """The worker's ingest-side pre-aggregation, as ``settings`` configure it."""
    ms, ts = settings.metrics, settings.tokens
    return PreAggregator(
        ms.window_settings(),
        SeriesKeyer(ms.dimensions, ms.max_series),
        wall_ns,
        ts.price_table() if ts.enabled else None,
        signals=ms.enabled,
        trees=ms.trace_trees(wall_ns),
        rewind_depth=2 * ms.coalesce_max_spans,  # held, and sent but not committed
    )
