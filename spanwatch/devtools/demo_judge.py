"""The demo's stand-in for a judge model: an OpenAI-compatible ``/v1/chat/completions`` on
loopback that labels the sentiment of a user message by a few words.

It exists so that the demo can show the path a real judge's answers take (sampled call ->
judge -> ``spanwatch.findings`` -> label windows -> ``NegativeUserSentiment``) on a machine
with no model to ask. It judges nothing well; point ``safety.judges`` at a real model in use.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NEGATIVE = ("太差", "还没到账", "terrible", "worst", "still nothing")
POSITIVE = ("谢谢", "thanks", "great")


def label(text: str) -> str:
    t = text.lower()
    if any(w in t for w in NEGATIVE):
        return "negative"
    return "positive" if any(w in t for w in POSITIVE) else "neutral"


class DemoJudge:
    """``with DemoJudge() as judge:`` serves on ``judge.url`` until the block ends."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                text = str(body.get("messages", [{}, {}])[-1].get("content", ""))
                verdict = label(text)
                answer = {"label": verdict, "score": 0.9 if verdict == "negative" else 0.1}
                out = json.dumps(
                    {
                        "id": "demo-judge",
                        "choices": [
                            {"message": {"role": "assistant", "content": json.dumps(answer)}}
                        ],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> DemoJudge:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
