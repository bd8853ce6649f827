"""Real processes for integration tests; the collector (Rotel) lives here, the rest in
:mod:`spanwatch.devtools.cluster`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

from spanwatch.devtools.broker import free_port
from spanwatch.devtools.cluster import WorkerProc, consume_until, produce, span_records
from spanwatch.devtools.proc import spawn, stop

__all__ = ["RotelProc", "WorkerProc", "consume_until", "produce", "span_records"]


@dataclass
class RotelProc:
    """Rotel with its Kafka exporter, OTLP receivers on free loopback ports."""

    bootstrap: str
    topic: str
    workdir: Path
    fmt: str = "protobuf"
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    proc: Popen[bytes] | None = None

    def start(self) -> RotelProc:
        import rotel

        binary = Path(rotel.__file__).parent / "rotel-agent"
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(binary),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--pid-file",
            str(self.workdir / f"rotel-{self.grpc_port}.pid"),
            "--exporter",
            "kafka",
            "--kafka-exporter-brokers",
            self.bootstrap,
            "--kafka-exporter-traces-topic",
            self.topic,
            "--kafka-exporter-format",
            self.fmt,
            "--traces-batch-timeout",
            "200ms",
        ]
        self.proc = spawn(cmd, log_path=self.workdir / f"rotel-{self.grpc_port}.log")
        _wait_port(self.grpc_port, self.proc)
        return self

    def stop(self) -> None:
        stop(self.proc, grace=5)
        self.proc = None


def _wait_port(port: int, proc: Popen[bytes], timeout: float = 15.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")
