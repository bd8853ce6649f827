"""The web view in a real headless Chromium (Debian's package) while the demo runs: the page
loads, its charts update, an alert appears, drills down to its series and example trace, and
resolves. Screenshots of each step are kept in ``.test-output/ui/`` (and the test's tmp dir).
The test waits on the page's own state (``window.spanwatch``, the alert list), never on logs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from spanwatch.devtools.broker import free_port
from spanwatch.devtools.cluster import wait_until
from spanwatch.devtools.proc import spanwatch_cmd, spawn, stop
from tests.support.paths import ROOT

pytestmark = [pytest.mark.broker, pytest.mark.e2e]
SHOTS = ROOT / ".test-output" / "ui"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as root, in a closed network: no sandbox, no background connections (docs: env notes)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SLOW = '.alert[data-alertname="SlowModel"]'


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_the_web_view_follows_the_demo_live(tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.fail("Chromium not found: ./dev test installs Debian's chromium (apt-get install")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    demo = spawn(
        spanwatch_cmd("demo", "--duration", "170", "--ui-port", str(port)),
        log_path=tmp_path / "demo.log",
        env={"SPANWATCH_NO_BROWSER": "1"},
    )

    def shot(page: object, name: str) -> None:
        for folder in (SHOTS, tmp_path):
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]

    try:
        assert wait_until(lambda: _answers(url + "healthz"), 120), (
            tmp_path / "demo.log"
        ).read_text()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_function("window.spanwatch.points() >= 2", timeout=120_000)
            assert page.get_attribute("#conn", "data-state") == "live"
            shot(page, "1-loaded")

            page.wait_for_selector(f'{SLOW}[data-status="firing"]', timeout=120_000)
            page.click(SLOW)  # drill down: the alert's series, its example trace
            assert "qwen" in (page.text_content("#detail-name") or "")
            trace = page.text_content(f"{SLOW} code") or ""
            assert re.fullmatch(r"[0-9a-f]{32}", trace), trace
            points = page.evaluate("window.spanwatch.points()")
            shot(page, "2-firing")

            page.wait_for_function(f"window.spanwatch.points() > {points}", timeout=60_000)
            page.wait_for_selector(f'{SLOW}[data-status="resolved"]', timeout=150_000)
            shot(page, "3-resolved")
            text = page.text_content("body") or ""
            assert "PiiInCompletion" in text and "RunawayAgent" in text
            assert "*" in (page.text_content("#findings") or "")  # excerpts masked
            assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text)  # no raw phone number
            browser.close()
    finally:
        # SIGTERM: the demo stops its generator (up to 10 s), its worker (SIGKILL after 10 s)
        # and its broker, so it gets longer than either
        stop(demo, grace=40)
    assert demo.returncode == 0, (tmp_path / "demo.log").read_text()[-2000:]
    workdir = re.search(r"logs in (\S+)\)", (tmp_path / "demo.log").read_text())
    assert workdir is not None
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert workdir.group(1) not in ps  # nothing of this run is left running
    print(f"screenshots: {SHOTS} ({', '.join(sorted(os.listdir(SHOTS)))})")
