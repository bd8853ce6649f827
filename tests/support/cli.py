"""The one way tests run the command line: ``spanwatch ARGS`` in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

CLI = [sys.executable, "-m", "spanwatch.cli"]


def run_cli(*args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    """``spanwatch ARGS`` to completion, its output captured as text."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, **kw)
