"""Durations, one grammar for the configuration and the alert rules.

A number and a unit: ``500ms``, ``10s``, ``1.5m``, ``4h``, ``1d`` (spaces between them are
allowed; units ``ms``, ``s``, ``m``, ``h``, ``d``). A configuration duration is positive
(:func:`parse_duration_ns`); a rule's may be ``0`` where waiting is optional (``for: 0``,
:func:`parse_duration_s` with ``zero=True``).
"""

from __future__ import annotations

import re
from typing import Any

NS = 1_000_000_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_NS = {"ms": 1_000_000, "s": NS, "m": 60 * NS, "h": 3600 * NS, "d": 86400 * NS}
_HINT = "with ms, s, m, h or d (e.g. 30s, 5m, 4h)"


def parse_duration_ns(text: Any, *, zero: bool = False) -> int:
    """``"10s"``, ``"1.5m"``, ``"500ms"``, ``"1d"`` -> nanoseconds. ``0`` (or ``"0s"``) only
    with ``zero``; anything else is a :class:`ValueError` that says what is accepted."""
    if zero and isinstance(text, (int, float)) and not isinstance(text, bool) and text == 0:
        return 0
    m = _DURATION.match(str(text))
    ns = round(float(m.group(1)) * _UNIT_NS[m.group(2)]) if m else -1
    if ns < 0 or (ns == 0 and not zero):
        kind = "a number" if zero else "a positive number"
        raise ValueError(f"bad duration {text!r}: use {kind} {_HINT}")
    return ns


def parse_duration_s(text: Any, *, zero: bool = True) -> float:
    """The same grammar in seconds (alert rules: ``for: 5m``, ``group_wait: 30s``)."""
    return parse_duration_ns(text, zero=zero) / NS


def format_duration(ns: int) -> str:
    """The shortest exact form: ``60_000_000_000`` -> ``"1m"``."""
    for unit in ("d", "h", "m", "s", "ms"):
        if ns % _UNIT_NS[unit] == 0:
            return f"{ns // _UNIT_NS[unit]}{unit}"
    return f"{ns}ns"
