"""A local HTTP server standing in for Slack / DingTalk / generic webhooks (tests, bench).

It records every request (path, headers, JSON body, arrival time) and answers from a script
of status codes and delays (the last of each repeats), so tests can check bodies, retries
and slow receivers. ``requested`` is set as each request arrives (before its delay).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Webhook:
    def __init__(
        self, statuses: list[int] | None = None, delays: list[float] | None = None
    ) -> None:
        self.statuses = list(statuses or [200])
        self.delays = list(delays or [0.0])
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.requested = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                with hook.lock:
                    status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                    delay = hook.delays.pop(0) if len(hook.delays) > 1 else hook.delays[0]
                    hook.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "status": status,
                            "at": time.time(),
                            "headers": dict(self.headers),
                            "delay": delay,
                        }
                    )
                hook.requested.set()
                if delay:
                    time.sleep(delay)  # a slow receiver (the client may give up meanwhile)
                if self.path.startswith("/services/"):  # Slack answers a plain "ok"
                    payload = b"ok" if status == 200 else b"invalid_payload"
                else:  # DingTalk and generic JSON webhooks
                    payload = b'{"errcode": 0}' if status == 200 else b'{"errcode": 1}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True  # a slow answer never holds up the shutdown
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r["body"] for r in self.requests]

    def answered(self, ok: bool = True) -> list[dict[str, Any]]:
        """Requests answered with a 2xx (``ok``), or with anything else."""
        with self.lock:
            return [r for r in self.requests if (200 <= r["status"] < 300) == ok]
