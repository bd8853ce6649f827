"""The demo's stand-in for a judge model: an OpenAI-compatible ``/v1/chat/completions`` on
loopback that labels the sentiment of a user message by a few words.

It exists so that the demo can show the path a real judge's answers take (sampled call ->
judge -> ``spanwatch.findings`` -> label windows -> ``NegativeUserSentiment``) on a machine
with no model to ask. It judges nothing well; point ``safety.judges`` at a real model in use.
Tests give it their own verdict and read the texts it was asked about.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (the judge's system prompt, the text to judge) -> its answer: {"label", "score", ...}
Verdict = Callable[[str, str], dict[str, Any]]

NEGATIVE = ("太差", "还没到账", "terrible", "worst", "still nothing")
POSITIVE = ("谢谢", "thanks", "great")


def label(text: str) -> str:
    t = text.lower()
    if any(w in t for w in NEGATIVE):
        return "negative"
    return "positive" if any(w in t for w in POSITIVE) else "neutral"


def sentiment(system: str, text: str) -> dict[str, Any]:
    verdict = label(text)
    return {"label": verdict, "score": 0.9 if verdict == "negative" else 0.1}


class DemoJudge:
    """``with DemoJudge() as judge:`` serves on ``judge.url`` until the block ends; every
    text it was asked about is kept in ``judge.texts``."""

    def __init__(self, verdict: Verdict = sentiment) -> None:
        self.texts: list[str] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                messages = body.get("messages") or [{}]
                system = str(messages[0].get("content", ""))
                text = str(messages[-1].get("content", ""))
                judge.texts.append(text)
                answer = verdict(system, text)
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
