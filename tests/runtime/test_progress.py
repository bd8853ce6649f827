"""Long commands show progress with tqdm on a terminal, and nothing of it elsewhere."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

from tests.support.cli import CLI


def _csv(path: Path, rows: int) -> Path:
    lines = ["timestamp,value"] + [
        f"{1_700_000_000 + 60 * i},{1 + (i % 7) / 10}" for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _stderr_on_a_terminal(cmd: list[str]) -> str:
    """Run ``cmd`` with its stderr on a pseudo-terminal; what it wrote there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 cols
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=follower, env={
        **os.environ, "TQDM_MININTERVAL": "0"})  # fmt: skip
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed: the command ended
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(60) == 0, out[-2000:]
    return out.decode(errors="replace")


def test_anomaly_score_shows_how_much_of_the_file_is_read_on_a_terminal(tmp_path: Path) -> None:
    src = _csv(tmp_path / "big.csv", 20_000)
    shown = _stderr_on_a_terminal([*CLI, "anomaly", "score", "-i", str(src), "-o", os.devnull])
    assert re.search(r"\rscoring: +[1-9]\d?%\|.*\| \d+k/\d+k ", shown), shown[-500:]
    assert "20000 rows scored" in shown


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    src = _csv(tmp_path / "big.csv", 2_000)
    run = subprocess.run(
        [*CLI, "anomaly", "score", "-i", str(src), "-o", os.devnull],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr and "scoring" not in run.stderr
    assert run.stderr.startswith("anomaly score: 2000 rows scored")
