"""The web view's page in a real headless Chromium (Debian's package), over a dashboard the
test fills itself (no broker): it draws on load from the picture it arrived with, Chinese
series names render in a real CJK face, deltas keep it equal to the server's picture at a
fraction of the bytes, and a headless screenshot with a virtual-time budget returns.
Screenshots are kept in ``.test-output/ui/``. The test waits on the page's own state
(``window.spanwatch``), never on logs or sleeps.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from spanwatch.devtools.broker import free_port
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.view.dashboard import Dashboard
from spanwatch.runtime.ui import UiServer, UiThread
from tests.support.paths import ROOT

SHOTS = ROOT / ".test-output" / "ui"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as root, in a closed network: no sandbox, no background connections
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip
NS = 10**9
NAMES = ("智能客服", "知识库问答", "工作流编排", "support-agent")
# the CJK faces of the page's font stack (data/ui/app.css)
CJK_FACES = ("Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Noto Sans CJK SC",
             "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei")  # fmt: skip


def _window(service: str, start_s: int, ttft: float) -> dict[str, Any]:
    return {
        "series": {"service": service, "layer": "app", "operation": "chat", "model": "千问-max"},
        "window": {"name": "10s", "start_ns": start_s * NS, "end_ns": (start_s + 10) * NS},
        "count": 5,
        "rate_per_s": 0.5,
        "ttft_s": {"p50": ttft, "p95": ttft * 2},
        "time_share": {"decode": 0.7, "queue": 0.3},
    }


@pytest.fixture
def server() -> Iterator[UiServer]:
    if CHROMIUM is None:
        pytest.fail("Chromium not found: ./dev test installs Debian's chromium (apt-get install")
    srv = UiServer(
        Settings(), port=free_port(), follow_topics=False, push_interval_s=0.05,
        dashboard=Dashboard(points=30),
    )  # fmt: skip
    for k in range(40):
        for i, name in enumerate(NAMES):
            srv.dashboard.add("metrics", name, _window(name, 1000 + 10 * k, 0.1 + i / 10))
    ui = UiThread(srv).start()
    try:
        yield srv
    finally:
        ui.stop()


def _normal(state: dict[str, Any]) -> dict[str, Any]:
    return {s["id"]: {k: s[k] for k in ("t", "ttft_p95", "labels")} for s in state["series"]}


def test_the_page_draws_on_load_in_cjk_and_follows_deltas(server: UiServer) -> None:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{server.port}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="load")
        # drawn by the time the page has loaded: no event needed
        rows = page.eval_on_selector_all("#series tbody tr", "rs => rs.map(r => r.textContent)")
        assert len(rows) == len(NAMES) and any("智能客服" in r for r in rows)
        assert page.evaluate("window.spanwatch.points()") == 30
        page.screenshot(path=str(SHOTS / "0-on-load.png"), full_page=True)

        # the Chinese names are drawn by a CJK face of the stack, every glyph of them
        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        cell = cdp.send("DOM.querySelector", {"nodeId": root, "selector": 'td[title="智能客服"]'})
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": cell["nodeId"]})["fonts"]
        assert {f["familyName"] for f in fonts} <= set(CJK_FACES), fonts
        assert sum(f["glyphCount"] for f in fonts) == len("智能客服")

        # live: windows close; the page merges deltas into the picture it has
        page.wait_for_function("document.getElementById('conn').dataset.state === 'live'")
        full = len(orjson.dumps(server.snapshot()))
        start_bytes = page.evaluate("window.spanwatch.bytes")
        for k in range(40, 50):
            with server.lock:
                for i, name in enumerate(NAMES):
                    server.dashboard.add("metrics", name, _window(name, 1000 + 10 * k, 0.2 + i))
            page.wait_for_function(f"window.spanwatch.state.version === {server.dashboard.version}")
        got = page.evaluate("window.spanwatch.state")
        assert _normal(got) == _normal(server.snapshot())
        sent = page.evaluate("window.spanwatch.bytes") - start_bytes
        assert 0 < sent < 10 * full / 4  # ten deltas: under a quarter of ten snapshots
        page.screenshot(path=str(SHOTS / "0-after-deltas.png"), full_page=True)
        browser.close()


def test_a_headless_screenshot_with_a_virtual_time_budget_returns(
    server: UiServer, tmp_path: Path
) -> None:
    """It never returned while the page followed an event stream (a fetch that never ends)."""
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM or "chromium", "--headless", *ARGS, f"--screenshot={shot}",
           "--window-size=1400,1000", "--virtual-time-budget=3000",
           f"http://127.0.0.1:{server.port}/"]  # fmt: skip
    try:
        run = subprocess.run(cmd, capture_output=True, timeout=90)
    except subprocess.TimeoutExpired:  # run() kills it
        pytest.fail("chromium --virtual-time-budget did not return within 90 s")
    assert run.returncode == 0 and shot.stat().st_size > 10_000, run.stderr[-2000:]
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SHOTS / "0-virtual-time.png")
