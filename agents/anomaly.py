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

import faust
import orjson

from pipeline.anomaly.base import AnomalyScorer
from pipeline.anomaly.stream import AnomalyStage, dump_state, load_state
from pipeline.config import Settings
from pipeline.deadletter import SourceRef

log = logging.getLogger("spanwatch.anomaly")


def register(app: faust.App, settings: Settings) -> AnomalyStage:
    topics, cfg = settings.topics, settings.anomaly
    windows = app.topic(topics.metrics, topics.tokens, key_type=bytes, value_type=bytes,
                        key_serializer="raw", value_serializer="raw")
    out = app.topic(topics.anomalies, key_serializer="raw", value_serializer="raw")
    state = app.Table("anomaly-state", default=None, partitions=topics.partitions)
    stage = cfg.stage(settings.metrics.windows)
    errors = {"n": 0}

    def get(key: str) -> AnomalyScorer | None:
        raw = state.get(key)
        return load_state(raw) if raw else None

    def put(key: str, scorer: AnomalyScorer) -> bool:
        if key not in state and len(state) >= cfg.max_series:
            return False
        state[key] = dump_state(scorer)
        return True

    @app.agent(windows, name="spanwatch.anomaly")
    async def score(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            msg = event.message
            try:
                rec = orjson.loads(event.value)
                key = (msg.key or b"").decode()
                results = stage.process(key, rec, get, put) if isinstance(rec, dict) else []
                for r in results:
                    await out.send(key=msg.key, value=orjson.dumps(r))
            except Exception:
                errors["n"] += 1
                log.exception("anomaly scoring failed at %s",
                              SourceRef(msg.topic, msg.partition, msg.offset))

    return stage
