"""What a content check found: a frozen :class:`Finding` with the sensitive part masked.

A finding never carries the raw sensitive text: ``excerpt`` is built by :func:`masked_excerpt`
(the matched characters replaced, a little context either side). Offsets are character
offsets into the scanned text, so a user can find the place without the text leaving it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum


class Severity(IntEnum):
    """Ordered severities: rules compare them (``min_severity: high``)."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {value!r}; one of {names}") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    """One match of one check in one text.

    ``kind`` names the check family (``pii``, ``secret``, ``lexicon``, ``injection``,
    ``unicode``, ``judge``), ``category`` what exactly (``cn_mobile``, ``openai_key``, a
    lexicon category ...). ``start``/``end`` are character offsets (end exclusive).
    """

    kind: str
    category: str
    severity: Severity
    score: float
    start: int
    end: int
    excerpt: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score {self.score} outside [0, 1]")
        if not 0 <= self.start <= self.end:
            raise ValueError(f"bad span {self.start}..{self.end}")

    def with_excerpt(self, excerpt: str) -> Finding:
        return replace(self, excerpt=excerpt)


MASK = "*"
CONTEXT_CHARS = 12


def mask_value(value: str, keep_head: int = 0, keep_tail: int = 0) -> str:
    """``13800138000`` -> ``138****8000`` (keep_head=3, keep_tail=4).

    At least half of the value is always masked, whatever ``keep_*`` ask for, so a short
    value is never shown whole.
    """
    n = len(value)
    budget = n // 2
    head = min(keep_head, budget)
    tail = min(keep_tail, budget - head)
    hidden = n - head - tail
    return value[:head] + MASK * min(hidden, 8) + (value[n - tail :] if tail else "")


def masked_excerpt(
    text: str,
    spans: list[tuple[int, int, str]],
    focus: tuple[int, int],
    context: int = CONTEXT_CHARS,
) -> str:
    """The text around ``focus`` with every span in ``spans`` replaced by its masked form.

    ``spans`` holds ``(start, end, masked)`` for every finding of the text, so context around
    one finding never reveals another one. Newlines become spaces (one-line excerpts).
    """
    lo, hi = max(0, focus[0] - context), min(len(text), focus[1] + context)
    out: list[str] = []
    pos = lo
    for start, end, masked in sorted(spans):
        if end <= lo or start >= hi:
            continue
        if start < pos:  # overlaps one already masked: widen the mask over it
            if end > pos:
                pos = end
            continue
        out.append(text[pos:start])
        out.append(masked)
        pos = end
    if pos < hi:
        out.append(text[pos:hi])
    body = "".join(out).replace("\n", " ").replace("\r", " ")
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")
