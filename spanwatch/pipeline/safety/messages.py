"""The text a user wrote, out of the JSON that instrumentations wrap it in.

Many instrumentations store a message list as one JSON string attribute
(``gen_ai.input.messages``, ``gen_ai.prompt``, ``llm.input_messages``, OpenInference's
``input.value``), usually written with ``json.dumps(messages)``. Python escapes every
non-ASCII character there by default (``"\\u5ffd\\u7565..."``) and every newline and quote,
so scanning the string as it is finds no Chinese word, no phone number next to a CJK
character, and no phrase broken by ``\\n``. :func:`readable_text` decodes such JSON and
returns its string values, one per line, in document order; values of structural keys
(``role``, ``type``, ids, ``finish_reason``) are left out, and string values that are
themselves JSON (tool-call ``arguments``) are decoded the same way. Anything that is not
JSON is returned unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

# keys whose values describe the message, never hold what someone wrote
_STRUCTURAL = frozenset(
    {
        "role",
        "type",
        "id",
        "tool_call_id",
        "call_id",
        "finish_reason",
        "mime_type",
        "modality",
        "index",
    }
)
# keys whose values are what someone wrote: kept bare; other keys' string values are kept as
# "key: value", so that a value's own label stays next to it ("phone: ...", "password: ...")
_TEXT_KEYS = frozenset(
    {"content", "text", "value", "message", "parts", "prompt", "completion", "input", "output"}
)
_MAX_DEPTH = 3  # JSON inside a JSON string inside ...: arguments of a tool call


def readable_text(text: str, *, max_chars: int = 4_000_000) -> str:
    """``text`` with a JSON document replaced by its string values, one per line (module
    docs); unchanged when it is not JSON, holds no strings, or is longer than
    ``max_chars`` (decoding would cost more than the scan)."""
    return _decode(text, max_chars, 0)


def _decode(text: str, max_chars: int, depth: int) -> str:
    head = text.lstrip()[:1]
    if head not in ("[", "{") or len(text) > max_chars or depth >= _MAX_DEPTH:
        return text
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    parts: list[str] = []
    _strings(doc, parts, max_chars, depth)
    return "\n".join(parts) if parts else text


def _strings(node: Any, out: list[str], max_chars: int, depth: int) -> None:
    if isinstance(node, str):
        if node:
            out.append(_decode(node, max_chars, depth + 1))
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _STRUCTURAL:
                continue
            if isinstance(value, str) and key not in _TEXT_KEYS:
                if value:
                    out.append(f"{key}: {_decode(value, max_chars, depth + 1)}")
            else:
                _strings(value, out, max_chars, depth)
    elif isinstance(node, list):
        for value in node:
            _strings(value, out, max_chars, depth)


_USER_ROLES = frozenset({"user", "human"})


def user_text(text: str) -> str:
    """What the user asked: the last user message of a JSON message list (the question, not
    the system prompt or history around it); the readable text of any other value."""
    head = text.lstrip()[:1]
    if head == "[":
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        if isinstance(doc, list):
            users = [m for m in doc if isinstance(m, dict) and m.get("role") in _USER_ROLES]
            if users:
                parts: list[str] = []
                _strings(users[-1], parts, 4_000_000, 0)
                return "\n".join(parts)
    return readable_text(text)
