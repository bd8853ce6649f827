"""Sensitive-word lexicons matched with an Aho-Corasick automaton (``pyahocorasick``).

One pass over the text finds every term of every lexicon, however many thousands. Text and
terms are folded the same way (:func:`pipeline.safety.textview.view`: full-width and other
compatibility forms, case, traditional characters by OpenCC's tables, look-alike letters,
invisible characters, and separators spread between characters), so ``ＢＯＭＢ``, ``Bomb``
and ``b.o.m.b`` match ``bomb``, ``炸彈`` and ``炸 弹`` match ``炸弹``. A Latin term matches as
a whole word by default (``class`` does not match inside ``classic``); a Chinese term
matches anywhere (Chinese has no spaces between words). Findings point at the original
characters, separators included.

Lexicon files are UTF-8 text, one term per line, ``#`` comments; a line may override the
file's category and severity: ``term<TAB>category<TAB>severity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick

from .finding import Finding, Severity, mask_value
from .fold import fold
from .registry import Scanner, register
from .textview import view

DEFAULT_LEXICON = Path(__file__).resolve().parent.parent / "data" / "lexicon" / "default.txt"


@dataclass(frozen=True, slots=True)
class Term:
    length: int
    category: str
    severity: Severity
    whole_word: bool


def _is_word_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def _whole_word_default(term: str) -> bool:
    return all(c.isascii() for c in term)


def read_lexicon(path: Path, category: str, severity: Severity) -> list[tuple[str, str, Severity]]:
    """``(term, category, severity)`` for every line of a lexicon file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"lexicon {path}: {exc}") from None
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        try:
            cat = parts[1].strip() if len(parts) > 1 and parts[1].strip() else category
            sev = Severity.parse(parts[2].strip()) if len(parts) > 2 else severity
        except ValueError as exc:
            raise ValueError(f"lexicon {path}:{n}: {exc}") from None
        out.append((parts[0].strip(), cat, sev))
    return out


@register("lexicon")
class LexiconScanner(Scanner):
    """Every lexicon term found in a text, with its category and severity."""

    def __init__(
        self,
        *,
        lexicons: list[dict[str, Any]] | None = None,
        builtin: bool = True,
        match: str = "auto",
        fold_width: bool = True,
        fold_case: bool = True,
        fold_traditional: bool = True,
    ) -> None:
        if match not in ("auto", "word", "substring"):
            raise ValueError(f"match must be auto, word or substring, not {match!r}")
        self._fold = {"width": fold_width, "case": fold_case, "traditional": fold_traditional}
        # every fold on: the shared normalized view; a fold switched off: 1:1 folding only
        self._default_fold = fold_width and fold_case and fold_traditional
        entries: list[tuple[str, str, Severity, str]] = []
        if builtin:
            entries += [
                (t, c, s, match)
                for t, c, s in read_lexicon(DEFAULT_LEXICON, "policy", Severity.MEDIUM)
            ]
        for spec in lexicons or ():
            entries += self._entries(dict(spec), match)
        self._automaton = ahocorasick.Automaton()
        self.size = 0
        for term, category, severity, mode in entries:
            self._add(term, category, severity, mode)
        if self.size:
            self._automaton.make_automaton()

    def _entries(self, spec: dict[str, Any], match: str) -> list[tuple[str, str, Severity, str]]:
        category = str(spec.pop("category", "policy"))
        severity = Severity.parse(spec.pop("severity", "medium"))
        mode = str(spec.pop("match", match))
        path, terms = spec.pop("path", None), spec.pop("terms", None)
        if spec:
            raise ValueError(f"unknown lexicon keys {sorted(spec)}")
        out = [(t, category, severity, mode) for t in (terms or ())]
        if path is not None:
            out += [(t, c, s, mode) for t, c, s in read_lexicon(Path(path), category, severity)]
        return out

    def _key(self, text: str) -> str:
        if self._default_fold:
            return view(text, join=True).text
        return fold(text, **self._fold)

    def _add(self, term: str, category: str, severity: Severity, mode: str) -> None:
        key = self._key(term)
        if not key.strip():
            return
        whole = _whole_word_default(term) if mode == "auto" else mode == "word"
        old = self._automaton.get(key, None)
        if old is not None and old.severity >= severity:
            return
        if old is None:
            self.size += 1
        self._automaton.add_word(key, Term(len(key), category, severity, whole))

    def scan(self, text: str) -> list[Finding]:
        if not self.size or not text:
            return []
        if self._default_fold:
            v = view(text, join=True)
            folded, span = v.text, v.span
        else:
            folded = fold(text, **self._fold)
            span = _identity_span
        out = []
        n = len(folded)
        for end_idx, term in self._automaton.iter(folded):
            start, end = end_idx - term.length + 1, end_idx + 1
            if term.whole_word and (
                (start > 0 and _is_word_char(folded[start - 1]))
                or (end < n and _is_word_char(folded[end]))
            ):
                continue
            o_start, o_end = span(start, end)
            out.append(
                Finding(
                    "lexicon",
                    term.category,
                    term.severity,
                    1.0,
                    o_start,
                    o_end,
                    mask_value(text[o_start:o_end], keep_head=1),
                )
            )
        return out


def _identity_span(start: int, end: int) -> tuple[int, int]:
    return start, end
