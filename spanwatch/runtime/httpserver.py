"""The worker's HTTP endpoint: Prometheus metrics, liveness, readiness and a status report.

| path | answer |
|---|---|
| `/metrics` | Prometheus text exposition |
| `/healthz` | 200 while the event loop runs and no stage is stalled, else 503 (liveness) |
| `/readyz` | 200 once joined, tables restored and not stalled, else 503 (readiness) |
| `/status` | the health report as JSON (always 200): state, lag per partition, last |
|  | event and stall per stage |

Served from a thread, so a blocked event loop still gets an answer: `/healthz` then reports
the loop as unresponsive (its report stopped being refreshed).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from spanwatch.pipeline.common.health import HealthTracker
from spanwatch.runtime.build import core_build

MAX_REPORT_AGE_S = 10.0  # the tracker is refreshed every second


def _handler(
    registry: CollectorRegistry, tracker: HealthTracker | None
) -> type[BaseHTTPRequestHandler]:
    build = core_build()  # served once the worker's modules are loaded: it does not change

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                return
            if path in ("/healthz", "/readyz", "/status"):
                if tracker is None:
                    healthy, ready, report = True, True, {"state": "running"}
                else:
                    healthy, ready, report = tracker.status(time.monotonic(), MAX_REPORT_AGE_S)
                ok = {"/healthz": healthy, "/readyz": ready, "/status": True}[path]
                body = json.dumps(
                    {**report, "core": build}
                    if path == "/status"
                    else {
                        "status": "ok" if ok else "fail",
                        "state": report["state"],
                        "stalled": report.get("stalled", []),
                    }
                ).encode()
                self._send(200 if ok else 503, body, "application/json")
                return
            self._send(
                404,
                b'{"error": "not found: try /metrics, /healthz, /readyz, /status"}',
                "application/json",
            )

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes and probes are not worth a log line

    return Handler


def serve(
    port: int,
    bind: str = "0.0.0.0",
    tracker: HealthTracker | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; returns the server (``shutdown()`` stops it)."""
    server = ThreadingHTTPServer((bind, port), _handler(registry, tracker))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="spanwatch-http", daemon=True).start()
    return server
