"""``ingest:`` and ``normalize:``: the ingest stage's configuration sections.

Settings models live apart from the code that runs per span, so that code can be compiled
(mypyc, see README "Building wheels") while pydantic keeps its plain classes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..common.durations import parse_duration_ns
from ..common.settings import Duration, SettingsModel
from .message import IngestOptions
from .normalize import MAX_DURATION_S, NormalizeOptions
from .otlp import Encoding
from .spans import Layer


class IngestSettings(SettingsModel):
    encoding: Encoding = Encoding.AUTO
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    # a span ending later than the worker's clock plus this is moved back to it (flagged
    # clock_skew:future), so no host's clock can move a partition's watermark ahead
    max_future_skew: Duration = "5s"
    # a span ending further than this ahead of the worker's clock, or before its message's
    # broker timestamp, goes to the dead-letter topic (timestamp_out_of_range)
    max_timestamp_skew: Duration = "1d"
    # what a dead letter keeps of its message at most (the rest is cut, its size in a header):
    # below the producer's request limit, so a dead letter can always be sent
    deadletter_max_bytes: int = Field(512 * 1024, ge=1024, le=900 * 1024)
    # how the source topic is read: "batch" (the firehose: aiokafka batches of up to
    # batch_max_messages, its own consumer group <app_id>-firehose; transport/firehose.py) or
    # "faust" (one faust event per message, in the app's group)
    reader: Literal["batch", "faust"] = "batch"
    batch_max_messages: int = Field(500, ge=1, le=100_000)

    def options(self, normalize: NormalizeOptions, *, collect_content: bool) -> IngestOptions:
        """The ingest stage's options from this section (and normalization's)."""
        return IngestOptions(
            encoding=self.encoding,
            max_message_bytes=self.max_message_bytes,
            normalize=normalize,
            collect_content=collect_content,
            max_future_skew_ns=parse_duration_ns(self.max_future_skew),
            max_timestamp_skew_ns=parse_duration_ns(self.max_timestamp_skew),
        )


class NormalizeSettings(SettingsModel):
    layer_overrides: dict[str, Layer] = Field(default_factory=dict)
    keep_non_llm: bool = False
    dependencies: bool = True  # client calls to Redis, databases, HTTP, RPC: layer "dependency"
    max_duration_s: float = Field(MAX_DURATION_S, gt=0)
    dedupe_instrumentations: bool = True  # pipeline.ingest.dedupe: one count per LLM call
    # model-server service glob -> the model it serves, for engines whose spans name no model
    # and whose caller is not in the same message (pipeline.ingest.inherit)
    engine_models: dict[str, str] = Field(default_factory=dict)

    def options(self) -> NormalizeOptions:
        return NormalizeOptions(
            layer_overrides=tuple(self.layer_overrides.items()),
            keep_non_llm=self.keep_non_llm,
            dependencies=self.dependencies,
            max_duration_s=self.max_duration_s,
            dedupe_instrumentations=self.dedupe_instrumentations,
            engine_models=tuple(self.engine_models.items()),
        )
