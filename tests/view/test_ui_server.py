"""The web view's server without a browser: who may see it, and the address it prints."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from spanwatch.pipeline.common.errors import ConfigError
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.view.dashboard import apply_delta
from spanwatch.runtime.ui import UiServer, access_token, browser_url


def _settings(**ui: Any) -> Settings:
    return Settings.model_validate({"ui": ui})


def test_loopback_by_default_and_open_binds_need_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """``spanwatch ui`` bound 0.0.0.0 with no authentication and printed http://0.0.0.0/."""
    assert Settings().ui.bind == "127.0.0.1"
    assert access_token(Settings(), "127.0.0.1") is None
    with pytest.raises(ConfigError, match=r"ui\.bind '0\.0\.0\.0' is not loopback: set ui\.token"):
        access_token(Settings(), "0.0.0.0")
    assert access_token(_settings(allow_anonymous=True), "0.0.0.0") is None  # said loudly
    monkeypatch.setenv("UI_TOKEN", "s3cret-token")
    assert access_token(_settings(token="${UI_TOKEN}"), "0.0.0.0") == "s3cret-token"
    assert "s3cret" not in repr(_settings(token="${UI_TOKEN}"))
    assert browser_url("0.0.0.0", 8090) == "http://127.0.0.1:8090/"
    assert browser_url("::", 8090, "t") == "http://127.0.0.1:8090/?token=t"
    assert browser_url("10.0.0.5", 80) == "http://10.0.0.5:80/"


def test_a_token_is_required_of_every_request_but_the_probe() -> None:
    server = UiServer(_settings(token="abc123"), "0.0.0.0", 0)

    async def run() -> dict[str, int]:
        async with TestClient(TestServer(server.app())) as client:
            out = {
                "page": (await client.get("/")).status,
                "api": (await client.get("/api/snapshot")).status,
                "health": (await client.get("/healthz")).status,
                "wrong": (await client.get("/api/snapshot?token=nope")).status,
                "bearer": (
                    await client.get("/api/snapshot", headers={"Authorization": "Bearer abc123"})
                ).status,
            }
            first = await client.get("/?token=abc123")  # sets the cookie the page then uses
            out["with_token"] = first.status
            out["cookie"] = (await client.get("/api/snapshot")).status
            return out

    got = asyncio.run(run())
    assert got == {
        "page": 401,
        "api": 401,
        "health": 200,
        "wrong": 401,
        "bearer": 200,
        "with_token": 200,
        "cookie": 200,
    }


def _window(service: str, start_s: int) -> dict[str, Any]:
    ns = 10**9
    return {
        "series": {"service": service, "layer": "app", "operation": "chat", "model": "qwen"},
        "window": {"name": "10s", "start_ns": start_s * ns, "end_ns": (start_s + 10) * ns},
        "count": 3,
        "rate_per_s": 0.3,
        "ttft_s": {"p50": 0.2, "p95": 0.4},
    }


def test_the_page_arrives_with_the_current_picture_inside_it() -> None:
    """A page opened before the first event stayed on "connecting", and a headless
    screenshot was empty: the page now carries the picture, and no string in it (a series
    named ``</script>``) can end the script element that holds it."""
    server = UiServer(_settings(), follow_topics=False)
    server.dashboard.add("metrics", "a", _window("客服</script><b>x", 0))

    async def run() -> str:
        async with TestClient(TestServer(server.app())) as client:
            return await (await client.get("/")).text()

    html = asyncio.run(run())
    assert html.count("</script>") == html.count("<script")  # only the page's own
    body = html.split('<script id="state" type="application/json">', 1)[1].split("</script>")[0]
    state = orjson.loads(body)
    assert state["kind"] == "full" and state["epoch"] == server.dashboard.epoch
    assert state["series"][0]["labels"]["service"] == "客服</script><b>x"


async def _events(client: TestClient, n: int, **headers: str) -> list[tuple[str, dict[str, Any]]]:
    """The first ``n`` events of /api/events: (id, message)."""
    resp = await client.get("/api/events", headers=headers)
    out: list[tuple[str, dict[str, Any]]] = []
    ident = ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("id: "):
            ident = line[4:]
        elif line.startswith("data: "):
            out.append((ident, orjson.loads(line[6:])))
            if len(out) == n:
                break
    resp.close()
    return out


def test_the_event_stream_sends_what_changed_since_the_page_s_version() -> None:
    server = UiServer(_settings(), follow_topics=False, push_interval_s=0.01)
    d = server.dashboard
    for i in range(40):
        d.add("metrics", f"s{i}", _window(f"s{i}", 0))
    page = server.snapshot()
    have = f"{d.epoch}:{d.version}"

    async def run() -> dict[str, Any]:
        async with TestClient(TestServer(server.app())) as client:
            fresh = await _events(client, 1)  # no version: a whole snapshot
            with server.lock:
                d.add("metrics", "s3", _window("s3", 10))
            (resumed,) = await _events(client, 1, **{"Last-Event-ID": have})
            stale = await _events(client, 1, **{"Last-Event-ID": "another-epoch:3"})
            return {"fresh": fresh[0], "resumed": resumed, "stale": stale[0]}

    got = asyncio.run(run())
    assert got["fresh"][1]["kind"] == "full" and got["fresh"][0] == have
    ident, delta = got["resumed"]
    assert ident == f"{d.epoch}:{d.version}" and delta["kind"] == "delta"
    assert [(s["id"], s["t"]) for s in delta["series"]] == [("s3", [10.0])]
    assert len(orjson.dumps(delta)) * 10 < len(orjson.dumps(page))
    merged = {s["id"]: s for s in apply_delta(page, delta)["series"]}
    assert merged == {s["id"]: s for s in server.snapshot()["series"]}
    assert got["stale"][1]["kind"] == "full"  # a version of another picture (a restart)


def test_the_page_s_socket_resumes_from_its_version() -> None:
    """The page follows /api/live (a WebSocket; an event stream kept a headless browser with
    a virtual-time budget waiting forever): a delta from the version it has, then changes."""
    server = UiServer(_settings(), follow_topics=False, push_interval_s=0.01)
    d = server.dashboard
    d.add("metrics", "a", _window("a", 0))
    since = f"{d.epoch}:{d.version}"

    async def run() -> list[dict[str, Any]]:
        async with TestClient(TestServer(server.app())) as client:
            ws = await client.ws_connect(f"/api/live?since={since}")
            with server.lock:
                d.add("metrics", "a", _window("a", 10))
            first = orjson.loads((await ws.receive()).data)
            with server.lock:
                d.add("metrics", "b", _window("b", 10))
            second = orjson.loads((await ws.receive()).data)
            await ws.close()
            return [first, second]

    first, second = asyncio.run(run())
    assert first["kind"] == "delta" and [s["t"] for s in first["series"]] == [[10.0]]
    assert second["since"] == first["version"]
    assert [(s["id"], "labels" in s) for s in second["series"]] == [("b", True)]
