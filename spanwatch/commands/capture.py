"""``spanwatch capture``: save raw messages of a topic as files, for ``spanwatch normalize``.

Each message becomes ``<topic>-<partition>-<offset>.pb`` or ``.json`` (by sniffing), with its
key and headers in a ``.meta.json`` sidecar.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError
from tqdm import tqdm

from spanwatch.pipeline.common.errors import BrokerError
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.ingest.otlp import Encoding, detect_encoding
from spanwatch.runtime.kafka import require_topic, settings_config
from spanwatch.runtime.progress import bar


def _headers(raw: Any) -> dict[str, bytes]:
    pairs = raw.items() if isinstance(raw, dict) else (raw or [])
    return {str(k): v if isinstance(v, bytes) else str(v or "").encode() for k, v in pairs}


def capture(
    settings: Settings, topic: str, out: Path, *, max_messages: int = 0, idle_timeout: float = 5.0
) -> int:
    """Read ``topic`` from the beginning with a throw-away group; return messages saved. An
    unreachable broker or a topic that does not exist is a :class:`BrokerError` (one line),
    never "captured 0 messages"."""
    require_topic(settings, topic)
    out.mkdir(parents=True, exist_ok=True)
    conf = {
        **settings_config(settings, "consumer"),
        "group.id": f"spanwatch-capture-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    saved = 0
    last = time.monotonic()
    shown: tqdm[None] = bar(desc=f"capturing {topic}", total=max_messages or None, unit="msg")
    try:
        while not max_messages or saved < max_messages:
            msg = consumer.poll(0.5)
            if msg is None:
                if time.monotonic() - last > idle_timeout:
                    break
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise BrokerError(f"capture from {topic}: {err}")
            last = time.monotonic()
            value = msg.value() or b""
            headers = _headers(msg.headers())
            enc = detect_encoding(value, headers)
            stem = f"{topic}-{msg.partition()}-{msg.offset()}"
            (out / f"{stem}.{'json' if enc is Encoding.OTLP_JSON else 'pb'}").write_bytes(value)
            meta = {
                "topic": topic,
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": (msg.key() or b"").decode("utf-8", "replace"),
                "headers": {k: v.decode("utf-8", "replace") for k, v in headers.items()},
            }
            (out / f"{stem}.meta.json").write_text(json.dumps(meta, indent=1))
            saved += 1
            shown.update()
    finally:
        shown.close()
        consumer.close()
    return saved
