"""Shared fixtures. Broker tests start their own Tansu on a free port (no external services)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.proc import stop_all

TESTDATA = Path(__file__).parent / "testdata"
TOPICS = ["otlp_spans", "spanwatch.spans", "spanwatch.deadletter"]


@pytest.fixture(autouse=True)
def _stop_leftover_processes() -> Iterator[None]:
    """A test that fails between starting a process and stopping it would leave a worker or
    broker running in its own session: stop whatever it left, by the PID we started."""
    yield
    stop_all()


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh in-memory Tansu per test (starts in ~0.2 s), so tests never see each other."""
    with EmbeddedBroker(topics=TOPICS, partitions=4, log_path=tmp_path / "tansu.log") as b:
        yield b
