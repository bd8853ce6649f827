"""Real processes around a broker: a ``spanwatch worker`` child, a producer, a reader.

Used by the demo, the benchmarks and the integration tests. Every process is started by us,
on its own ports, and stopped by its PID.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from confluent_kafka import Consumer, Producer

from pipeline.config import BROKER_PROFILES
from pipeline.spans import LlmSpan
from spanwatch.broker import free_port
from spanwatch.proc import spanwatch_cmd, spawn, stop

TANSU = BROKER_PROFILES["tansu"]


@dataclass
class WorkerProc:
    """``spanwatch worker`` in a child process with its own data dir and log file."""

    bootstrap: str
    workdir: Path
    app_id: str = field(default_factory=lambda: f"sw-test-{uuid.uuid4().hex[:6]}")
    extra: tuple[str, ...] = ()
    metrics_port: int = field(default_factory=free_port)
    config: Path | None = None
    proc: Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.app_id}.log"

    def start(self, wait_ready: float = 60.0) -> WorkerProc:
        return self.launch().wait_ready(wait_ready)

    def launch(self) -> WorkerProc:
        """Start the process without waiting (start several, then wait for each)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        pre = ("--config", str(self.config)) if self.config else ()
        cmd = spanwatch_cmd(*pre, "worker", "--broker", self.bootstrap, "--profile", "tansu",
                            "--app-id", self.app_id,
                            "--data-dir", str(self.workdir / f"{self.app_id}-data"),
                            "--metrics-port", str(self.metrics_port), *self.extra)
        self.proc = spawn(cmd, log_path=self.log_path)
        return self

    def wait_ready(self, timeout: float = 60.0) -> WorkerProc:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log()[-3000:]}")
            if "Worker]: Ready" in self.log():
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready: {self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None


def produce(bootstrap: str, topic: str, values: Iterable[bytes | tuple[bytes | None, bytes]],
            headers: list[tuple[str, str | bytes | None]] | None = None) -> int:
    """Produce values (or (key, value) pairs); returns how many."""
    p = Producer({"bootstrap.servers": bootstrap, **TANSU.producer})
    n = 0
    for item in values:
        key, value = item if isinstance(item, tuple) else (None, item)
        p.produce(topic, value=value, key=key, headers=headers)
        n += 1
        p.poll(0)
    assert p.flush(30) == 0
    return n


def consume_until(bootstrap: str, topics: list[str],
                  done: Callable[[list[Any]], bool], timeout: float = 60.0) -> list[Any]:
    """Read ``topics`` from the beginning until ``done(messages)`` or the timeout."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  **TANSU.consumer})
    c.subscribe(topics)
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done(got):
            m = c.poll(0.3)
            if m is not None and m.error() is None:
                got.append(m)
    finally:
        c.close()
    return got


class RecordCount:
    """``done`` predicate for :func:`consume_until`: at least ``n`` records read, counted
    incrementally (re-parsing every message on every poll would starve the worker)."""

    def __init__(self, n: int, topic: str = "spanwatch.spans") -> None:
        self.n, self.topic, self.seen, self.records = n, topic, 0, 0

    def __call__(self, messages: list[Any]) -> bool:
        for m in messages[self.seen:]:
            if m.topic() == self.topic:
                self.records += len(json.loads(m.value())["spans"])
        self.seen = len(messages)
        return self.records >= self.n


def span_records(messages: list[Any], topic: str = "spanwatch.spans") -> list[LlmSpan]:
    """Normalized records in the ``spanwatch.spans`` messages among ``messages``."""
    return [LlmSpan.from_dict(rec) for m in messages if m.topic() == topic
            for rec in json.loads(m.value())["spans"]]
