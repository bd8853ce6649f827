"""The ``safety`` configuration section: scanners, roles, limits and the optional judge model."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ..common.errors import ConfigError
from ..common.settings import SettingsModel, expand_env
from .judge import PRESETS, JudgeSettings
from .registry import build_scanner
from .scan import DEFAULT_SCANNERS, SafetyEngine


class JudgeConfig(SettingsModel):
    """An OpenAI-compatible chat endpoint that labels sampled texts (off the hot path)."""

    url: str  # base URL ending in /v1; /chat/completions is appended
    model: str
    # a ready-made evaluation (pipeline.safety.judge.PRESETS): hallucination (the answer
    # against its context), sentiment, topic (give its labels); fields set here win
    preset: Literal["hallucination", "sentiment", "topic"] | None = None
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

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        """A preset fills the fields the configuration does not set."""
        if not isinstance(data, dict) or data.get("preset") not in PRESETS:
            return data  # no preset, or an unknown one (the field reports it)
        preset = data["preset"]
        if preset == "topic" and "labels" not in data:
            raise ValueError("preset topic: give the topics as labels, e.g. [billing, other]")
        return {**PRESETS[preset], **data}

    def judge_settings(self) -> JudgeSettings:
        key = self.api_key.get_secret_value() if self.api_key is not None else None
        d = self.model_dump(
            exclude={
                "api_key",
                "severity",
                "roles",
                "failure_threshold",
                "reset_after_s",
                "prompt",
                "preset",
            }
        )
        if self.prompt:
            d["prompt"] = self.prompt
        return JudgeSettings(**d, api_key=expand_env(key) if key else None)


class SafetySettings(SettingsModel):
    """Content-safety checks on prompts and completions (README "Content safety")."""

    enabled: bool = True
    scanners: tuple[dict[str, Any], ...] = DEFAULT_SCANNERS
    roles: tuple[str, ...] = ("input", "output", "system", "tool")
    max_chars: int = Field(1_000_000, ge=1)  # longer texts are scanned up to here (counted)
    judge: JudgeConfig | None = None
    judges: tuple[JudgeConfig, ...] = ()  # more evaluations, each its own queue and calls

    @model_validator(mode="after")
    def _judge_names(self) -> SafetySettings:
        names = [j.name for j in self.all_judges()]
        if len(set(names)) != len(names):
            raise ValueError(f"judge and judges: each evaluation needs its own name, got {names}")
        return self

    def all_judges(self) -> tuple[JudgeConfig, ...]:
        """``judge`` (if set) and ``judges``."""
        return ((self.judge,) if self.judge is not None else ()) + self.judges

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
