"""The live web view: ``spanwatch ui``, or a worker with ``ui.enabled``.

A reader thread follows spanwatch's output topics (closed windows, token windows and black
holes, findings, anomalies, alerts, silences) with its own throw-away consumer group, starting
``ui.lookback`` records before the end of each partition, and feeds
:class:`~spanwatch.pipeline.view.dashboard.Dashboard`. An aiohttp server (in its own thread and
event loop, so a busy worker loop never delays it) serves the page, its vendored scripts,
``/api/snapshot`` (JSON), and what changed since the version a reader has, at most every
``push_interval_s`` (:meth:`~spanwatch.pipeline.view.dashboard.Dashboard.delta`), on
``/api/live`` (a WebSocket: what the page follows) and ``/api/events`` (server-sent events).
The page arrives with the current picture inside it. Nothing is loaded from outside.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from confluent_kafka import Consumer, KafkaError, TopicPartition

from spanwatch.pipeline.common.errors import ConfigError
from spanwatch.pipeline.common.settings import expand_env
from spanwatch.pipeline.config import Settings
from spanwatch.pipeline.view.dashboard import Dashboard
from spanwatch.runtime.kafka import settings_config

log = logging.getLogger("spanwatch.ui")
STATIC = Path(__file__).resolve().parent.parent / "data" / "ui"


def output_topics(settings: Settings) -> dict[str, str]:
    """Topic name -> the kind of record it carries (what :meth:`Dashboard.add` reads)."""
    t = settings.topics
    return {
        t.metrics: "metrics",
        t.tokens: "tokens",
        t.findings: "findings",
        t.anomalies: "anomalies",
        t.alerts: "alerts",
        t.silences: "silences",
    }


@dataclass
class TopicReader:
    """Follows the output topics into a dashboard (thread; :meth:`stop` ends it)."""

    settings: Settings
    dashboard: Dashboard
    lock: threading.Lock
    lookback: int = 2000  # records per partition read back at start
    records: int = 0
    bad_records: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TopicReader:
        self._thread = threading.Thread(target=self._run, name="spanwatch-ui-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        kinds = output_topics(self.settings)
        consumer = Consumer(
            {
                **settings_config(self.settings, "consumer"),
                "group.id": f"spanwatch-ui-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        try:
            self._assign(consumer, list(kinds))
            while not self._stop.is_set():
                for msg in consumer.consume(500, timeout=0.2):
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            log.warning("ui reader: %s", err)
                        continue
                    self._add(kinds[str(msg.topic())], msg.key(), msg.value())
        except Exception:
            log.exception("ui reader stopped")
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer, topics: list[str]) -> None:
        """Every partition of the topics that exist, ``lookback`` records before its end."""
        while not self._stop.is_set():
            meta = consumer.list_topics(timeout=10)
            found = [t for t in topics if t in meta.topics and not meta.topics[t].error]
            if found:
                break
            self._stop.wait(1.0)  # the worker has not created its topics yet
        else:
            return
        parts = []
        for topic in found:
            for p in meta.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                parts.append(TopicPartition(topic, p, max(low, high - self.lookback)))
        consumer.assign(parts)

    def _add(self, kind: str, key: bytes | None, value: bytes | None) -> None:
        try:
            rec = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            self.bad_records += 1
            return
        with self.lock:
            self.dashboard.add(kind, key.decode(errors="replace") if key else None, rec)
            self.records += 1


LOOPBACK = ("127.0.0.1", "::1", "localhost")
COOKIE = "spanwatch_ui"


def access_token(settings: Settings, host: str) -> str | None:
    """The token the view requires (None: none). Bound to loopback it needs none; anywhere
    else a token (``ui.token``, ``${VAR}`` read from the environment), or ``ui.allow_anonymous``
    (a warning at start): the page shows findings, users and costs."""
    raw = settings.ui.token.get_secret_value() if settings.ui.token is not None else ""
    token = expand_env(raw).strip() if raw else ""
    if token:
        return token
    if host in LOOPBACK or settings.ui.allow_anonymous:
        if host not in LOOPBACK:
            log.warning(
                "web view on %s with NO authentication (ui.allow_anonymous): anyone who "
                "reaches the port sees findings, users and costs",
                host,
            )
        return None
    raise ConfigError(
        f'ui.bind {host!r} is not loopback: set ui.token (e.g. "${{SPANWATCH_UI_TOKEN}}") '
        "or ui.allow_anonymous: true"
    )


def browser_url(host: str, port: int, token: str | None = None) -> str:
    """An address a browser on this machine can open (a wildcard bind is not one)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


@dataclass
class UiServer:
    """The page and its API over one dashboard (see the module)."""

    settings: Settings
    host: str = "127.0.0.1"
    port: int = 8080
    push_interval_s: float = 1.0
    dashboard: Dashboard = field(default_factory=Dashboard)
    lock: threading.Lock = field(default_factory=threading.Lock)
    reader: TopicReader | None = None
    token: str | None = None  # required of every request when set (access_token)
    follow_topics: bool = True  # False: serve the dashboard as given (tests, tools)
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        self.token = access_token(self.settings, self.host)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """With a token: ``?token=`` (sets a cookie), the cookie, or ``Authorization:
        Bearer``; /healthz is open (a probe carries no token)."""
        if self.token is None or request.path == "/healthz":
            return await handler(request)
        given = (
            request.query.get("token")
            or request.cookies.get(COOKIE)
            or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        )
        if not given or not hmac.compare_digest(given, self.token):
            return web.Response(status=401, text="spanwatch ui: a token is required (?token=...)\n")
        resp: web.StreamResponse = await handler(request)
        if request.query.get("token"):
            resp.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return resp

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/", self._index)
        app.router.add_get("/api/snapshot", self._snapshot)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/live", self._live)
        app.router.add_get("/healthz", self._health)
        app.router.add_static("/static/", STATIC, show_index=False)
        return app

    async def start(self) -> None:
        if self.follow_topics:
            self.reader = TopicReader(
                self.settings, self.dashboard, self.lock, self.settings.ui.lookback
            ).start()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        log.info(
            "web view on %s%s",
            browser_url(self.host, self.port),
            " (token required)" if self.token else "",
        )

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    def _reader_info(self) -> dict[str, Any]:
        return {
            "records": self.reader.records if self.reader else 0,
            "bad_records": self.reader.bad_records if self.reader else 0,
            "trace_url": self.settings.ui.trace_url,
        }

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            snap = self.dashboard.snapshot()
        snap["reader"] = self._reader_info()
        return snap

    def message(self, since: str | None) -> dict[str, Any]:
        """What a page that has version ``since`` (``"epoch:version"``, None: nothing) needs:
        a delta when it has a version of this picture, else a whole snapshot."""
        with self.lock:
            msg = None
            epoch, _, version = (since or "").partition(":")
            if epoch == self.dashboard.epoch and version.isdigit():
                msg = self.dashboard.delta(int(version))
            if msg is None:
                msg = self.dashboard.snapshot()
        msg["reader"] = self._reader_info()
        return msg

    async def _index(self, request: web.Request) -> web.Response:
        """The page with the current picture inside it: it draws at once, before (and
        without) its event stream, so a page opened early or a headless screenshot shows
        data. ``<`` is escaped so no string in the data can close the script element."""
        state = orjson.dumps(self.snapshot()).replace(b"<", b"\\u003c").decode()
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        html = html.replace(
            "<!--state-->", f'<script id="state" type="application/json">{state}</script>', 1
        )
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "records": self.reader.records if self.reader else 0})

    async def _snapshot(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.snapshot()), content_type="application/json")

    async def _changes(self, have: str | None) -> AsyncIterator[tuple[str, bytes] | None]:
        """Every ``push_interval_s``: (the version it brings the page to, the message) when
        the picture moved past ``have``, else None (time for a keep-alive)."""
        while True:
            with self.lock:
                current = f"{self.dashboard.epoch}:{self.dashboard.version}"
            if current != have:
                msg = self.message(have)
                have = f"{msg['epoch']}:{msg['version']}"
                yield have, orjson.dumps(msg)
            else:
                yield None
            await asyncio.sleep(self.push_interval_s)

    async def _live(self, request: web.Request) -> web.WebSocketResponse:
        """What the page follows: a WebSocket carrying what changed since ``?since=``
        (``epoch:version``), then every change. A socket, not an event stream: a headless
        browser with a virtual-time budget waits for pending fetches, and an event stream is
        one that never ends."""
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)

        async def pump() -> None:
            async for change in self._changes(request.query.get("since")):
                if ws.closed:
                    return
                if change is not None:
                    await ws.send_str(change[1].decode())

        task = asyncio.create_task(pump())
        try:
            async for _ in ws:  # the page sends nothing; reading notices it closing
                pass
        finally:
            task.cancel()
        return ws

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """The same as server-sent events (for ``curl``): the id of each event is the
        version it brings a reader to; ``Last-Event-ID`` resumes from it."""
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        have = request.headers.get("Last-Event-ID") or request.query.get("since")
        try:
            async for change in self._changes(have):
                if change is None:
                    await resp.write(b": keep-alive\n\n")
                else:
                    await resp.write(
                        b"id: " + change[0].encode() + b"\ndata: " + change[1] + b"\n\n"
                    )
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp


class UiThread:
    """A :class:`UiServer` in its own thread and event loop (inside a worker or the demo)."""

    def __init__(self, server: UiServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="spanwatch-ui", daemon=True)

    def start(self, timeout: float = 10.0) -> UiThread:
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the web view did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop)
        try:
            fut.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
