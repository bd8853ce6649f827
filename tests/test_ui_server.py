"""The web view's server without a browser: who may see it, and the address it prints."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.errors import ConfigError
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
