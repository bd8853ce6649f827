"""Children that spanwatch starts die with it, even when it is killed (SIGKILL, a CI
timeout): no broker or worker is left running (a killed bench once left both for 50 min)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from spanwatch.devtools.cluster import wait_until

PARENT = """
import sys, time
from spanwatch.devtools.proc import spawn
child = spawn([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has died


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_a_child_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)  # no finally, no atexit: only the kernel acts
        parent.wait(10)
        assert wait_until(lambda: not _alive(child), 10), f"child {child} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_spawn_returns_once_the_death_signal_is_set() -> None:
    """``setpriv`` sets the signal and then execs the command: ``spawn`` must not return in
    between, or a parent killed right then leaves the child running."""
    from spanwatch.devtools.proc import spawn, stop

    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv (util-linux) here")
    setpriv = os.path.realpath(shutil.which("setpriv") or "")
    for _ in range(20):
        child = spawn([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            assert os.readlink(f"/proc/{child.pid}/exe") != setpriv
        finally:
            stop(child)
