"""Annotation templates: Jinja2 in a sandbox (a rule file cannot reach Python internals).

Variables: ``value``, ``threshold``, ``labels``, ``expected`` (``low``/``high`` or None),
``top`` (top contributors: ``name``/``value``), ``trace_id``, ``trace_url``, ``signal``,
``unit``, ``alertname``, ``count`` (events). Filters: ``duration`` (seconds -> "850 ms",
"4.1 s", "2m05s"), ``pct`` (ratio -> "12.5%"), ``round``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

log = logging.getLogger("spanwatch.alerting")


def duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    if abs(s) < 1:
        return f"{s * 1000:.0f} ms"
    if abs(s) < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    return f"{m}m{sec:02d}s"


def pct(ratio: Any) -> str:
    try:
        return f"{float(ratio) * 100:.1f}%"
    except (TypeError, ValueError):
        return str(ratio)


def _env() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
    env.filters["duration"] = duration
    env.filters["pct"] = pct
    return env


ENV = _env()


def check(source: str) -> str | None:
    """None if the template compiles, else ``line N: message``."""
    try:
        ENV.parse(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno} of the template: {exc.message}"
    return None


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Any:
    return ENV.from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    """Rendered text; a template that fails at render time shows its source and the error
    instead of hiding the alert."""
    try:
        return str(_compiled(source).render(**context))
    except Exception as exc:  # sandbox violations, type errors in filters, ...
        log.warning("template failed: %s", exc)
        return f"{source} [template error: {type(exc).__name__}]"
