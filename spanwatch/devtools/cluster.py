"""Real processes around a broker: a ``spanwatch worker`` child, a producer, a reader.

Used by the demo, the benchmarks and the integration tests. Every process is started by us,
on its own ports, and stopped by its PID.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from confluent_kafka import Consumer, Producer

from spanwatch.devtools.broker import free_port
from spanwatch.devtools.proc import spanwatch_cmd, spawn, stop
from spanwatch.pipeline.config import BROKER_PROFILES
from spanwatch.pipeline.ingest.spans import LlmSpan

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
    module: str = "spanwatch.cli"  # what ``python -m`` runs (tests wrap the CLI to inject faults)
    # a folder put first on the worker's import path (a compiled wheel's, ``./dev compiled``),
    # with ``-P`` so that the working directory (perhaps a checkout) never comes before it
    site: Path | None = None
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
        cmd = spanwatch_cmd(
            *pre,
            "worker",
            "--broker",
            self.bootstrap,
            "--profile",
            "tansu",
            "--app-id",
            self.app_id,
            "--data-dir",
            str(self.workdir / f"{self.app_id}-data"),
            "--metrics-port",
            str(self.metrics_port),
            *self.extra,
            module=self.module,
        )
        env = None
        if self.site is not None:
            cmd.insert(1, "-P")
            env = {"PYTHONPATH": str(self.site)}
        self.proc = spawn(cmd, log_path=self.log_path, env=env)
        return self

    def wait_ready(self, timeout: float = 60.0) -> WorkerProc:
        """Until the worker's ``/readyz`` answers 200 (joined, tables restored, not stalled)."""
        self.until(lambda st: st["ready"], timeout, "ready")
        return self

    def status(self) -> dict[str, Any] | None:
        """The worker's ``/status`` report, or ``None`` while it does not answer."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/status", timeout=2
            ) as resp:
                return dict(json.loads(resp.read()))
        except (OSError, ValueError):
            return None

    def until(
        self, check: Callable[[dict[str, Any]], Any], timeout: float = 60.0, what: str = "condition"
    ) -> dict[str, Any]:
        """Poll ``/status`` until ``check(report)`` is true; returns that report. Raises when
        the process exits or the timeout passes, with the last report and the log's tail."""
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}): {self.log()[-3000:]}")
            last = self.status()
            if last is not None and check(last):
                return last
            time.sleep(0.2)
        raise TimeoutError(
            f"worker not {what} after {timeout:.0f} s; last status {last}; "
            f"log: {self.log()[-2000:]}"
        )

    def wait_drained(
        self, timeout: float = 60.0, *, produced: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """Until the worker is ready, nothing is stalled, every partition it owns has been
        processed and committed (no lag) and no notification waits for delivery, in two
        reports (a report made just before records reached a topic shows no lag yet). A partition
        counts as processed when committed or read to its end (:func:`_processed`).
        ``produced``: topic -> records the caller has written to it in all; the worker must
        show at least that many, so a report made before the writes never counts."""
        seen: list[int] = []

        def drained(st: dict[str, Any]) -> bool:
            ends: Counter[str] = Counter()
            for p in st["partitions"]:
                ends[p["topic"]] += p["end"] or 0
            ok = (
                bool(st["ready"])
                and not st["stalled"]
                and all(ends[t] >= n for t, n in (produced or {}).items())
                and all(_processed(p) for p in st["partitions"])
                and self.metric("spanwatch_notifications_pending") == 0
            )
            if ok and st.get("seq") not in seen:
                seen.append(st.get("seq", 0))
            return len(seen) >= 2

        return self.until(drained, timeout, "drained")

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` (with these labels) on ``/metrics``; 0 when absent
        or when the worker does not answer."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for fam in text_string_to_metric_families(self.scrape()):
            for sample in fam.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def scrape(self) -> str:
        """The worker's ``/metrics`` page (Prometheus text format); empty when it does not
        answer."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2
            ) as resp:
                return str(resp.read().decode())
        except OSError:
            return ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None


def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes | tuple[bytes | None, bytes]],
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> int:
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


def wait_until(check: Callable[[], Any], timeout: float) -> bool:
    """Poll ``check()`` every 0.2 s until it is true (``True``) or ``timeout`` passes
    (``False``): for state outside a worker's ``/status`` (a webhook's requests)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def consume_until(
    bootstrap: str, topics: list[str], done: Callable[[list[Any]], bool], timeout: float = 60.0
) -> list[Any]:
    """Read ``topics`` from the beginning until ``done(messages)`` or the timeout."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **TANSU.consumer,
        }
    )
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


def span_records(messages: list[Any], topic: str = "spanwatch.spans") -> list[LlmSpan]:
    """Normalized records in the ``spanwatch.spans`` messages among ``messages``."""
    return [
        LlmSpan.from_dict(rec)
        for m in messages
        if m.topic() == topic
        for rec in json.loads(m.value())["spans"]
    ]


def _processed(p: dict[str, Any]) -> bool:
    """Every record of a partition handled: committed (no lag), or read to its end; the worker's
    own control ticks (alerting, stitch) keep arriving, so their commit trails by a few."""
    read, end = p.get("read"), p.get("end") or 0
    return (p["lag"] or 0) == 0 or (read is not None and read + 1 >= end)
