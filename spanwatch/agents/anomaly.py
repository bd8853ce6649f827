"""Anomaly agent: closed windows (``spanwatch.metrics``, ``spanwatch.tokens``) -> scores and
anomaly events (``spanwatch.anomalies``).

* table ``anomaly-state``: ``<signal>|<series id>`` -> pickled
  :class:`~pipeline.anomaly.base.AnomalyScorer`, co-partitioned with the window topics (both
  keyed by series id), so one worker owns each series and a restart resumes learning.
* the body is :meth:`pipeline.anomaly.stream.AnomalyStage.process`; this module only moves
  records and state.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson

from spanwatch.pipeline.anomaly.base import AnomalyScorer
from spanwatch.pipeline.anomaly.stream import AnomalyStage, dump_state, load_state
from spanwatch.pipeline.config import Settings

from .control import dispatch

log = logging.getLogger("spanwatch.anomaly")


def register(app: faust.App, settings: Settings) -> AnomalyStage:
    topics, cfg = settings.topics, settings.anomaly
    windows = app.topic(
        topics.metrics,
        topics.engine,
        topics.tokens,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    out = app.topic(topics.anomalies, key_serializer="raw", value_serializer="raw")
    state = app.Table("anomaly-state", default=None, partitions=topics.partitions)
    stage = cfg.stage(settings.metrics.windows)

    def get(key: str) -> AnomalyScorer | None:
        raw = state.get(key)
        return load_state(raw) if raw else None

    def put(key: str, scorer: AnomalyScorer) -> bool:
        if key not in state and len(state) >= cfg.max_series:
            return False
        state[key] = dump_state(scorer)
        return True

    async def score_one(m: Any, rec: Any) -> None:
        if not isinstance(rec, dict):
            return
        for r in stage.process((m.key or b"").decode(), rec, get, put):
            await out.send(key=m.key, value=orjson.dumps(r))

    def count_error() -> None:
        stage.stats.errors += 1

    @app.agent(windows, name="spanwatch.anomaly")
    async def score(stream: faust.StreamT[bytes]) -> None:
        await dispatch(stream, score_one, count_error, log, "anomaly scoring")

    return stage
