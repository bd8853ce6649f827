"""Run every configured scanner over a text and shape the findings for output.

:class:`SafetyEngine` is the one code path for the worker and ``spanwatch safety scan``: it
scans, rebuilds every excerpt with *all* findings of the text masked (so the context around one
finding never shows another), and turns findings into records for ``spanwatch.findings``
(schema in docs/SCHEMAS.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..ingest.content import ContentItem as ContentItem  # where scanners' input is made
from .finding import Finding, masked_excerpt
from .messages import readable_text
from .registry import Scanner, build_scanner

DEFAULT_SCANNERS: tuple[dict[str, Any], ...] = (
    {"type": "pii"},
    {"type": "secrets"},
    {"type": "injection"},
    {"type": "lexicon"},
)


@dataclass
class SafetyStats:
    texts: int = 0
    chars: int = 0
    truncated: int = 0
    scanner_errors: Counter[str] = field(default_factory=Counter)
    findings: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # kind,cat,sev


class SafetyEngine:
    def __init__(self, scanners: list[Scanner], *, max_chars: int = 1_000_000) -> None:
        self.scanners = scanners
        self.max_chars = max_chars
        self.stats = SafetyStats()

    @classmethod
    def from_config(
        cls,
        specs: list[dict[str, Any]] | tuple[dict[str, Any], ...] = DEFAULT_SCANNERS,
        *,
        max_chars: int = 1_000_000,
    ) -> SafetyEngine:
        return cls([build_scanner(s) for s in specs], max_chars=max_chars)

    def scan(self, text: str) -> list[Finding]:
        """Findings of every scanner, ordered by position, excerpts masked in context. A JSON
        message list is scanned as the text it holds (:func:`readable_text`), and positions
        are offsets in that text."""
        self.stats.texts += 1
        text = readable_text(text, max_chars=4 * self.max_chars)
        if len(text) > self.max_chars:
            self.stats.truncated += 1
            text = text[: self.max_chars]
        self.stats.chars += len(text)
        found = self._matches(text)
        # each finding arrives with its value already masked by its scanner (the one place a
        # value is masked); the excerpt puts every mask of the text in the context around it
        masks = [(f.start, f.end, f.excerpt) for _, f in found]
        out = []
        for _, f in found:
            out.append(f.with_excerpt(masked_excerpt(text, masks, (f.start, f.end))))
            self.stats.findings[(f.kind, f.category, str(f.severity))] += 1
        return out

    def _matches(self, text: str) -> list[tuple[Scanner, Finding]]:
        """Every scanner's findings, ordered by position (a failing scanner is counted)."""
        found: list[tuple[Scanner, Finding]] = []
        for scanner in self.scanners:
            try:
                found += [(scanner, f) for f in scanner.scan(text)]
            except Exception:  # one broken scanner must not hide the others' findings
                self.stats.scanner_errors[scanner.name] += 1
        found.sort(key=lambda sf: (sf[1].start, sf[1].end))
        return found

    def redact(self, text: str) -> str:
        """``text`` with every finding masked (for text that must be shown, e.g. a judge's
        explanation that may quote the content). Not counted as a scanned text: its
        findings are not findings of the traffic."""
        masks = [
            (f.start, f.end, "[" + f.category + "]")
            for _, f in self._matches(text[: self.max_chars])
        ]
        return masked_excerpt(text, masks, (0, len(text)), context=0) if masks else text

    def scan_item(self, item: ContentItem) -> list[dict[str, Any]]:
        """Records for ``spanwatch.findings``: one per finding in the item."""
        return [finding_record(f, item) for f in self.scan(item.text)]


def finding_record(f: Finding, item: ContentItem) -> dict[str, Any]:
    return {
        "type": "finding",
        "kind": f.kind,
        "category": f.category,
        "severity": str(f.severity),
        "score": round(f.score, 4),
        "start": f.start,
        "end": f.end,
        "excerpt": f.excerpt,
        **item.provenance(),
    }
