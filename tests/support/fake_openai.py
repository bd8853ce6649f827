"""A local fake OpenAI-compatible server that streams tokens, and records what it did.

Used by the golden-file generator and the end-to-end tests so that tokens, model, TTFT and
ids found in normalized spans can be checked against what the server actually sent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = (
    "Kafka",
    " keeps",
    " the",
    " spans",
    " flowing",
    " while",
    " the",
    " model",
    " streams",
    " tokens",
    " to",
    " the",
    " agent",
    ".",
)


class FakeOpenAI:
    """``with FakeOpenAI(first_token_delay=0.15) as srv: client(base_url=srv.base_url)``."""

    def __init__(
        self,
        *,
        first_token_delay: float = 0.15,
        token_delay: float = 0.005,
        prompt_tokens: int = 23,
        completion_tokens: int = len(WORDS),
    ) -> None:
        self.first_token_delay = first_token_delay
        self.token_delay = token_delay
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                n = len(fake.requests) + 1
                rec = {
                    "id": f"chatcmpl-fake{n:04d}",
                    "model": body["model"],
                    "served_model": body["model"] + "-2024-08-06",
                    "stream": bool(body.get("stream")),
                    "prompt_tokens": fake.prompt_tokens,
                    "completion_tokens": fake.completion_tokens,
                    "first_token_delay": fake.first_token_delay,
                }
                fake.requests.append(rec)
                if rec["stream"]:
                    self._stream(rec, body)
                else:
                    self._complete(rec)

            def _usage(self, rec: dict[str, Any]) -> dict[str, int]:
                return {
                    "prompt_tokens": rec["prompt_tokens"],
                    "completion_tokens": rec["completion_tokens"],
                    "total_tokens": rec["prompt_tokens"] + rec["completion_tokens"],
                }

            def _complete(self, rec: dict[str, Any]) -> None:
                time.sleep(fake.first_token_delay)
                payload = {
                    "id": rec["id"],
                    "object": "chat.completion",
                    "created": 1,
                    "model": rec["served_model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "".join(WORDS)},
                        }
                    ],
                    "usage": self._usage(rec),
                }
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(
                self,
                rec: dict[str, Any],
                delta: dict[str, Any],
                finish: str | None = None,
                usage: bool = False,
            ) -> None:
                payload: dict[str, Any] = {
                    "id": rec["id"],
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": rec["served_model"],
                    "choices": []
                    if usage
                    else [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                if usage:
                    payload["usage"] = self._usage(rec)
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

            def _stream(self, rec: dict[str, Any], body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                time.sleep(fake.first_token_delay)
                self._chunk(rec, {"role": "assistant", "content": WORDS[0]})
                for word in WORDS[1 : fake.completion_tokens]:
                    time.sleep(fake.token_delay)
                    self._chunk(rec, {"content": word})
                self._chunk(rec, {}, finish="stop")
                if (body.get("stream_options") or {}).get("include_usage"):
                    self._chunk(rec, {}, usage=True)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler
