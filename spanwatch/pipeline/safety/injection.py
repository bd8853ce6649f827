"""Prompt injection and jailbreak detection (Chinese and English), and Unicode tricks.

Intent patterns (:mod:`pipeline.safety.intents`: override, no limits, reveal the prompt,
disable safety, exfiltrate, fake system message) run on the normalized view of
:mod:`pipeline.safety.textview`, so full-width letters, look-alike Cyrillic, zero-width
characters between letters and traditional characters change nothing. A role-play setup and a
limit or harm cue in the same text are a ``no_limits`` move too. The score grows with the
number of distinct moves. Unicode checks flag characters a reader cannot see (zero-width,
bidi overrides, tag characters) and words that mix Latin with look-alike Cyrillic or Greek.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import ahocorasick

from .classifier import InjectionModel, shipped_model
from .finding import Finding, Severity, mask_value
from .intents import CUE_PATTERNS, PATTERNS
from .registry import Scanner, register
from .textview import view

_CONFUSABLE_SCRIPTS = re.compile("[\u0370-\u03ff\u0400-\u04ff]")
_WEIGHT = {
    "override": 0.6,
    "hijack": 0.6,
    "reveal_prompt": 0.5,
    "no_limits": 0.5,
    "disable_safety": 0.6,
    "exfiltrate": 0.7,
    "fake_system": 0.5,
}
_SETUP = {"role_play", "in_character", "two_answers"}

Pattern = tuple[str, re.Pattern[str], tuple[str, ...] | None]


class _Prefilter:
    """Run each pattern only where one of the words it starts with occurs (one
    Aho-Corasick pass finds them all); patterns without such words run everywhere."""

    def __init__(self, patterns: tuple[Pattern, ...]) -> None:
        self.patterns = patterns
        self.always = [k for k, (_, _, words) in enumerate(patterns) if words is None]
        self.automaton = ahocorasick.Automaton()
        by_word: dict[str, list[int]] = {}
        for k, (_, _, words) in enumerate(patterns):
            for w in words or ():
                by_word.setdefault(w, []).append(k)
        for w, ks in by_word.items():
            self.automaton.add_word(w, (len(w), tuple(ks)))
        self.automaton.make_automaton()

    def matches(
        self,
        text: str,
        first_only: bool = False,
    ) -> list[tuple[str, re.Match[str]]]:
        out: list[tuple[str, re.Match[str]]] = []
        done: set[int] = set()
        for k in self.always:
            name, pattern, _ = self.patterns[k]
            found = [pattern.search(text)] if first_only else list(pattern.finditer(text))
            out += [(name, m) for m in found if m is not None]
        for end, (length, ks) in self.automaton.iter(text):
            start = end - length + 1
            for k in ks:
                if first_only and k in done:
                    continue
                name, pattern, _ = self.patterns[k]
                m = pattern.match(text, start)
                if m is not None:
                    out.append((name, m))
                    done.add(k)
        return out


_STRONG, _CUES = _Prefilter(PATTERNS), _Prefilter(CUE_PATTERNS)
_INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)
_WORD = re.compile(r"\w{3,}")


def _script(c: str) -> str | None:
    if c.isascii():
        return "latin" if c.isalpha() else None
    name = unicodedata.name(c, "")
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script.lower()
    return "other"


@register("injection")
class InjectionScanner(Scanner):
    """Injection phrases (one finding per phrase) and Unicode tricks (one finding each)."""

    def __init__(
        self,
        *,
        phrases: bool = True,
        invisible: bool = True,
        confusables: bool = True,
        min_invisible: int = 1,
        model: bool | InjectionModel = True,
        model_threshold: float | None = None,
    ) -> None:
        self._phrases, self._invisible, self._confusables = phrases, invisible, confusables
        self._min_invisible = min_invisible
        # the shipped learned detector (true), none, or one given (training and evaluation)
        self._model = (
            model if isinstance(model, InjectionModel) else (shipped_model() if model else None)
        )
        if model_threshold is not None and not 0.0 < model_threshold <= 1.0:
            raise ValueError(f"model_threshold must be in (0, 1], got {model_threshold}")
        self._cut = (
            model_threshold
            if model_threshold is not None
            else (self._model.threshold if self._model is not None else 1.0)
        )

    def scan(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        if self._phrases:
            out += self._scan_phrases(text)
        if self._model is not None:
            score = self._model.score(text)
            if score >= self._cut:
                excerpt = text[:80]
                out.append(
                    Finding("injection", "classifier", Severity.HIGH, score, 0, len(text), excerpt)
                )
        if self._invisible:
            out += self._scan_invisible(text)
        if self._confusables:
            out += self._scan_confusables(text)
        return out

    def _scan_phrases(self, text: str) -> list[Finding]:
        v = view(text)
        hits = [(name, *v.span(*m.span())) for name, m in _STRONG.matches(v.text)]
        cues: dict[str, tuple[int, int]] = {}
        for name, m in _CUES.matches(v.text, first_only=True):
            cues.setdefault(name, v.span(*m.span()))
        if _jailbreak_cues(cues.keys()):
            setup = next(cues[n] for n in cues if n in _SETUP)
            hits.append(("no_limits", *setup))
        if not hits:
            return []
        hits = _first_per_place(hits)
        moves = {name for name, _, _ in hits}
        score = min(1.0, sum(_WEIGHT[m] for m in moves))
        severity = Severity.HIGH if score >= 0.8 else Severity.MEDIUM
        return [
            Finding("injection", name, severity, score, start, end, text[start:end][:80])
            for name, start, end in hits
        ]

    def _scan_invisible(self, text: str) -> list[Finding]:
        hits = [m for m in _INVISIBLE.finditer(text) if not _joins_legitimately(text, m.start())]
        if len(hits) < self._min_invisible:
            return []
        start, end = hits[0].start(), hits[-1].end()
        names = sorted({f"U+{ord(m.group(0)):04X}" for m in hits})
        tag = any(ord(m.group(0)) >= 0xE0000 for m in hits)
        bidi = any(
            "\u202a" <= m.group(0) <= "\u202e" or "\u2066" <= m.group(0) <= "\u2069" for m in hits
        )
        severity = Severity.HIGH if tag or bidi else Severity.MEDIUM
        return [
            Finding(
                "unicode",
                "invisible_characters",
                severity,
                min(1.0, 0.5 + 0.1 * len(hits)),
                start,
                end,
                f"[{len(hits)} invisible: {' '.join(names[:6])}]",
            )
        ]

    def _scan_confusables(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        if not _CONFUSABLE_SCRIPTS.search(text):
            return out
        for m in _WORD.finditer(text):
            scripts = {s for c in m.group(0) if (s := _script(c)) is not None}
            if "latin" in scripts and scripts & {"cyrillic", "greek"}:
                out.append(
                    Finding(
                        "unicode",
                        "mixed_script",
                        Severity.MEDIUM,
                        0.7,
                        m.start(),
                        m.end(),
                        mask_value(m.group(0), 1, 1),
                    )
                )
        return out


def _jailbreak_cues(cues: set[str] | Any) -> bool:
    """A role-play setup is a jailbreak together with a limit cue ("no rules", "不需要考虑"),
    or with a harm cue when the setup insists (two kinds of setup: a role plus "stay in
    character" or two answers). A role and a harm word alone are an ordinary persona prompt:
    "act as a cyber security expert ... attacks", "扮演小说家 ... 出色情节"."""
    setups = len(cues & _SETUP)
    return bool(setups and ("limits" in cues or (setups >= 2 and "harm" in cues)))


_JOINERS = ("\u200c", "\u200d")  # zero-width non-joiner and joiner


def _emoji(c: str) -> bool:
    o = ord(c)
    return (
        0x1F000 <= o <= 0x1FAFF  # pictographs, emoticons, symbols, skin tones
        or 0x2600 <= o <= 0x27BF  # miscellaneous symbols, dingbats
        or 0x2B00 <= o <= 0x2BFF
        or o in (0xFE0F, 0x20E3)  # emoji presentation selector, keycap
    )


def _joins_legitimately(text: str, i: int) -> bool:
    """A joiner inside an emoji sequence (👨‍👩‍👧, 🏳️‍🌈) or between letters of a script that
    writes with joiners (Persian, Arabic, the Indic scripts): part of the writing, not a
    hiding place. Between Latin letters, or anywhere else, it is suspicious."""
    if text[i] not in _JOINERS or i == 0 or i + 1 >= len(text):
        return False
    before, after = text[i - 1], text[i + 1]
    if _emoji(before) and _emoji(after):
        return True
    return all(
        unicodedata.category(c)[0] in "LM"
        and unicodedata.name(c, "").split(" ")[0] in _JOINING_SCRIPTS
        for c in (before, after)
    )


_JOINING_SCRIPTS = frozenset(
    {
        "ARABIC",
        "DEVANAGARI",
        "BENGALI",
        "GURMUKHI",
        "GUJARATI",
        "ORIYA",
        "TAMIL",
        "TELUGU",
        "KANNADA",
        "MALAYALAM",
        "SINHALA",
        "SYRIAC",
        "MONGOLIAN",
        "KHMER",
        "MYANMAR",
    }
)


def _first_per_place(hits: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """One finding per move and place: overlapping matches of the same move are one."""
    out: list[tuple[str, int, int]] = []
    for name, start, end in sorted(hits, key=lambda h: (h[1], -h[2])):
        if any(n == name and s < end and start < e for n, s, e in out):
            continue
        out.append((name, start, end))
    return out
