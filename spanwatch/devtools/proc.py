"""Child processes that spanwatch starts (workers, collector): started by us, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


# Every child spawned here and not stopped yet: a test harness stops what a failed test
# left behind (its own session means nothing else would).
RUNNING: set[subprocess.Popen[bytes]] = set()


def _dies_with_us(cmd: Sequence[str]) -> list[str]:
    """``cmd`` under ``setpriv --pdeathsig KILL`` (util-linux) when this is the main thread:
    the kernel then kills the child if this process dies, even by SIGKILL or a CI timeout,
    where no ``finally`` runs (a killed bench left its broker and worker running for 50
    minutes). A child of another thread would die with that thread, so it is left alone."""
    if (
        sys.platform == "linux"
        and threading.current_thread() is threading.main_thread()
        and (setpriv := shutil.which("setpriv")) is not None
    ):
        return [setpriv, "--pdeathsig", "KILL", "--", *cmd]
    return list(cmd)


def _armed(proc: subprocess.Popen[bytes], wrapped: list[str], cmd: Sequence[str]) -> None:
    """Wait until ``setpriv`` has set the death signal, i.e. has exec'd ``cmd``.

    ``Popen`` returns once ``setpriv`` itself runs, before its ``prctl``: a parent killed
    in that gap would leave the child running (CI saw it once under load). The process's
    ``/proc/PID/exe`` stops being ``setpriv`` at the exec that follows the ``prctl``."""
    if wrapped == list(cmd):
        return
    setpriv = os.path.realpath(wrapped[0])
    deadline = time.monotonic() + 10.0
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if os.readlink(f"/proc/{proc.pid}/exe") != setpriv:
                return
        except OSError:
            return  # gone, or not ours to read: nothing left to wait for
        time.sleep(0.001)


def spawn(
    cmd: Sequence[str], *, log_path: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session, output to ``log_path`` (or discarded); it dies with
    this process (:func:`_dies_with_us`)."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        wrapped = _dies_with_us(cmd)
        proc = subprocess.Popen(
            wrapped,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        RUNNING.add(proc)
        _armed(proc, wrapped, cmd)
        return proc
    finally:
        if not isinstance(out, int):
            out.close()


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """SIGTERM the process (and its session), SIGKILL after ``grace`` seconds."""
    if proc is None:
        return
    RUNNING.discard(proc)
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def stop_all(grace: float = 3.0) -> int:
    """Stop every child still running (see ``RUNNING``); returns how many there were."""
    left = [p for p in RUNNING if p.poll() is None]
    RUNNING.clear()
    for proc in left:
        stop(proc, grace=grace)
    return len(left)


def spanwatch_cmd(*args: str, module: str = "spanwatch.cli") -> list[str]:
    """The command line that runs ``spanwatch ARGS`` with this interpreter (``module``: a
    wrapper of the CLI)."""
    return [sys.executable, "-m", module, *args]
