"""spanwatch configuration: one pydantic model, defaults in one place, secrets as ``SecretStr``.

Loaded from an optional YAML file (``--config``) and overridden by command-line flags. Unknown
keys are errors (``extra="forbid"``), and ``repr()`` never shows a secret.

Broker quirks live in :data:`BROKER_PROFILES`: the ``tansu`` profile carries every setting the
development broker needs (see ``docs/ARCHITECTURE.md``); the ``kafka`` profile is plain Apache
Kafka and carries none of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from spanwatch.pipeline.anomaly.base import AnomalyScorer
from spanwatch.pipeline.anomaly.signals import DEFAULT_DETECTORS, SIGNALS
from spanwatch.pipeline.anomaly.stream import AnomalyStage
from spanwatch.pipeline.blackhole import Budgets
from spanwatch.pipeline.errors import ConfigError
from spanwatch.pipeline.normalize import NormalizeOptions
from spanwatch.pipeline.otlp import Encoding
from spanwatch.pipeline.pricing import DEFAULT_PRICES, PriceTable
from spanwatch.pipeline.safety.engine import DEFAULT_SCANNERS, SafetyEngine
from spanwatch.pipeline.safety.judge import JudgeSettings
from spanwatch.pipeline.safety.registry import build_scanner
from spanwatch.pipeline.signals import ALLOWED_DIMENSIONS, DEFAULT_DIMENSIONS
from spanwatch.pipeline.spans import Layer
from spanwatch.pipeline.tracetree import TraceTrees
from spanwatch.pipeline.windows import WindowSettings, WindowSpec, parse_duration_ns
from spanwatch.rules import DEFAULT_RULES_DIR


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


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str) -> str:
    """``${NAME}`` -> the environment variable; an unset variable is a :class:`ConfigError`.

    Used for secrets (webhook URLs, API keys) so they live in the environment, not in files.
    """

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ConfigError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV_REF.sub(sub, value)


def _check_duration(v: str) -> str:
    parse_duration_ns(v)  # ValueError: "bad duration '5x': use a positive number with ..."
    return v


Duration = Annotated[str, AfterValidator(_check_duration)]  # "500ms", "10s", "5m", "1h"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Model):
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


class TopicSettings(_Model):
    source: str = "otlp_spans"  # the collector's Kafka exporter default
    spans: str = "spanwatch.spans"  # normalized records; "" disables
    deadletter: str = "spanwatch.deadletter"
    partials: str = "spanwatch.partials"  # internal: partial windows keyed by series
    metrics: str = "spanwatch.metrics"  # closed golden-signal windows
    tokens: str = "spanwatch.tokens"  # token windows, black-hole events, top consumers
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
                self.spans,
                self.deadletter,
                self.partials,
                self.metrics,
                self.tokens,
                self.pieces,
                self.payloads,
                self.findings,
                self.anomalies,
                self.alerts,
            )
            if t
        ]


class IngestSettings(_Model):
    encoding: Encoding = Encoding.AUTO
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)


class NormalizeSettings(_Model):
    layer_overrides: dict[str, Layer] = Field(default_factory=dict)
    keep_non_llm: bool = False
    max_duration_s: float = Field(6 * 3600.0, gt=0)
    dedupe_instrumentations: bool = True  # pipeline.dedupe: one count per LLM call

    def options(self) -> NormalizeOptions:
        return NormalizeOptions(
            layer_overrides=tuple(self.layer_overrides.items()),
            keep_non_llm=self.keep_non_llm,
            max_duration_s=self.max_duration_s,
            dedupe_instrumentations=self.dedupe_instrumentations,
        )


class MetricsSettings(_Model):
    """Golden-signal windows (see docs/ARCHITECTURE.md, "Golden signals")."""

    enabled: bool = True
    windows: tuple[str, ...] = ("10s", "1m", "5m")  # "SIZE" tumbling or "SIZE/STEP" hopping
    allowed_lateness: Duration = "5s"
    idle_timeout: Duration = "30s"  # an idle partition's watermark follows the wall clock
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
    max_series: int = Field(10_000, ge=1)  # per worker; beyond it spans go to an overflow series
    heartbeat_interval_s: float = Field(1.0, gt=0)
    # the merge keeps series state in memory and saves what changed to its table this often;
    # a successor re-applies the partials of at most this much time (docs/ARCHITECTURE.md)
    state_flush_interval: Duration = "1s"
    # a trace split over messages is joined (agent depth, self time) while its parts come
    # within trace_wait of each other; at most max_trace_spans spans are held per worker
    trace_wait: Duration = "10m"
    max_trace_spans: int = Field(200_000, ge=0)
    prometheus_port: int = Field(9464, ge=0, le=65535)  # 0 disables /metrics
    prometheus_bind: str = "0.0.0.0"

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one window")
        for w in v:
            WindowSpec.parse(w)
        if len(set(v)) != len(v):
            raise ValueError("duplicate window")
        return v

    @field_validator("dimensions")
    @classmethod
    def _dimensions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [d for d in v if d not in ALLOWED_DIMENSIONS]
        if bad:
            raise ValueError(f"unknown dimensions {bad}; allowed: {list(ALLOWED_DIMENSIONS)}")
        return v

    def trace_trees(self, wall_ns: Callable[[], int]) -> TraceTrees:
        return TraceTrees(wall_ns, parse_duration_ns(self.trace_wait), self.max_trace_spans)

    def window_settings(self) -> WindowSettings:
        return WindowSettings(
            specs=tuple(WindowSpec.parse(w) for w in self.windows),
            allowed_lateness_ns=parse_duration_ns(self.allowed_lateness),
            idle_timeout_ns=parse_duration_ns(self.idle_timeout),
        )


class BudgetSettings(_Model):
    """Black-hole budgets of one entity kind (``null`` disables a budget)."""

    max_llm_calls: int | None = Field(50, ge=1)
    max_tool_calls: int | None = Field(100, ge=1)
    max_tokens: int | None = Field(500_000, ge=1)
    max_tokens_per_minute: int | None = Field(200_000, ge=1)
    max_agent_depth: int | None = Field(8, ge=1)
    max_repeated_tool_calls: int | None = Field(5, ge=1)
    max_same_tool_calls: int | None = Field(10, ge=1)
    repeat_window: Duration = "5m"

    def budgets(self) -> Budgets:
        d = self.model_dump()
        d["repeat_window_ns"] = parse_duration_ns(d.pop("repeat_window"))
        return Budgets(**d)


class TokensSettings(_Model):
    """Token accounting, cost and black holes (windows as in ``metrics``)."""

    enabled: bool = True
    prices: Path = DEFAULT_PRICES
    trace_budgets: BudgetSettings = BudgetSettings()
    session_budgets: BudgetSettings = BudgetSettings(
        max_llm_calls=500,
        max_tool_calls=1000,
        max_tokens=5_000_000,
        max_tokens_per_minute=300_000,
        max_agent_depth=None,
        max_repeated_tool_calls=None,
        max_same_tool_calls=30,
    )
    activity_idle_timeout: Duration = "30m"  # traces/sessions quiet this long are forgotten
    max_tracked: int = Field(100_000, ge=1)  # traces + sessions per worker; beyond: overflow
    top_n: int = Field(10, ge=1, le=1000)

    def price_table(self) -> PriceTable:
        return PriceTable.load(self.prices)


class StitchSettings(_Model):
    """Reassembly of chunked payloads (docs/CHUNKING.md)."""

    enabled: bool = True
    timeout: Duration = "2m"  # an incomplete payload is emitted as partial after this
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024)  # per worker, incomplete payloads
    forward_content: bool = False  # put the text in spanwatch.payloads (privacy: off)
    max_content_bytes: int = Field(900_000, ge=1)  # broker limits: longer text is cut
    tick_interval_s: float = Field(1.0, gt=0)


class JudgeConfig(_Model):
    """An OpenAI-compatible chat endpoint that labels sampled texts (off the hot path)."""

    url: str  # base URL ending in /v1; /chat/completions is appended
    model: str
    api_key: SecretStr | None = None  # "${ENV_VAR}" is read from the environment
    name: str = "policy"  # gen_ai.evaluation.name
    labels: tuple[str, ...] = ("pass", "violation")
    flag_labels: tuple[str, ...] = ("violation",)  # these labels become findings
    severity: Literal["low", "medium", "high", "critical"] = "high"
    prompt: str | None = None  # system prompt; {name} and {labels} are filled in
    roles: tuple[str, ...] = ("output",)
    sample_rate: float = Field(0.1, ge=0, le=1)
    timeout_s: float = Field(10.0, gt=0)
    retries: int = Field(2, ge=0, le=10)
    backoff_s: float = Field(0.5, ge=0)
    max_concurrency: int = Field(4, ge=1, le=256)
    queue_size: int = Field(1000, ge=1)
    max_chars: int = Field(8000, ge=1)
    failure_threshold: int = Field(5, ge=1)
    reset_after_s: float = Field(30.0, gt=0)

    def judge_settings(self) -> JudgeSettings:
        key = self.api_key.get_secret_value() if self.api_key is not None else None
        d = self.model_dump(
            exclude={"api_key", "severity", "roles", "failure_threshold", "reset_after_s", "prompt"}
        )
        if self.prompt:
            d["prompt"] = self.prompt
        return JudgeSettings(**d, api_key=expand_env(key) if key else None)


class SafetySettings(_Model):
    """Content-safety checks on prompts and completions (README "Content safety")."""

    enabled: bool = True
    scanners: tuple[dict[str, Any], ...] = DEFAULT_SCANNERS
    roles: tuple[str, ...] = ("input", "output", "system", "tool")
    max_chars: int = Field(1_000_000, ge=1)  # longer texts are scanned up to here (counted)
    judge: JudgeConfig | None = None

    @field_validator("scanners")
    @classmethod
    def _scanners(cls, v: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        for spec in v:
            try:
                build_scanner(spec)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v

    def engine(self) -> SafetyEngine:
        return SafetyEngine.from_config(self.scanners, max_chars=self.max_chars)


class AnomalySettings(_Model):
    """Online anomaly detection on closed windows (docs/ANOMALY.md)."""

    enabled: bool = True
    window: str | None = None  # window shape scored; default "1m" if configured, else first
    signals: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_DETECTORS.items()}
    )
    entity_kinds: tuple[Literal["model", "service", "user", "session"], ...] = (
        "model",
        "service",
    )  # token windows scored (users/sessions: many series)
    max_series: int = Field(20_000, ge=1)  # (series, signal) detectors per worker
    emit_scores: bool = True  # every score to spanwatch.anomalies (not only start/end)

    @field_validator("signals")
    @classmethod
    def _signals(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(v) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signals {unknown}; known: {sorted(SIGNALS)}")
        for name, spec in v.items():
            try:
                AnomalyScorer.from_spec(spec)
            except ConfigError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return v

    def stage(self, windows: tuple[str, ...] = ("1m",)) -> AnomalyStage:
        """``windows``: ``metrics.windows``, to pick the default window."""
        window = self.window or ("1m" if "1m" in windows else windows[0])
        return AnomalyStage(dict(self.signals), window, tuple(self.entity_kinds), self.emit_scores)


class AlertingSettings(_Model):
    """Alert rules and notifications (docs/ALERTING.md)."""

    enabled: bool = True
    rules: tuple[Path, ...] = (DEFAULT_RULES_DIR,)  # files or directories of YAML rules
    tick_interval_s: float = Field(1.0, gt=0)  # how often for/keep_firing_for/groups advance
    stale_after: Duration = "5m"  # a series silent this long stops holding a threshold alert
    max_alerts: int = Field(10_000, ge=1)
    max_attempts: int = Field(12, ge=1)  # delivery attempts before a notification is dropped
    delivery_timeout_s: float = Field(30.0, gt=0)


class WorkerSettings(_Model):
    app_id: str = "spanwatch"
    data_dir: Path = Path("/tmp/spanwatch-data")
    loglevel: Literal["debug", "info", "warning", "error"] = "info"
    stats_interval_s: float = Field(10.0, gt=0)
    # a stage with unprocessed records whose committed offset has not moved for this long is
    # stalled: /healthz and /readyz answer 503
    stall_after: Duration = "60s"


class Settings(_Model):
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    ingest: IngestSettings = IngestSettings()
    normalize: NormalizeSettings = NormalizeSettings()
    metrics: MetricsSettings = MetricsSettings()
    tokens: TokensSettings = TokensSettings()
    stitch: StitchSettings = StitchSettings()
    safety: SafetySettings = SafetySettings()
    anomaly: AnomalySettings = AnomalySettings()
    alerting: AlertingSettings = AlertingSettings()
    worker: WorkerSettings = WorkerSettings()

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
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        data = loaded or {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition("__")
        data.setdefault(section, {})[key] = value
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        msgs = [f"{where}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(msgs)) from None
