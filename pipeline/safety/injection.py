"""Prompt injection and jailbreak heuristics (Chinese and English) and Unicode tricks.

Phrase patterns catch the classic moves: override previous instructions, reveal the system
prompt, switch to an unrestricted persona (DAN, "developer mode"), smuggle a new system
message. The score grows with the number of distinct moves in one text. Unicode checks flag
characters a reader cannot see (zero-width, bidi overrides, tag characters) and words that mix
Latin with look-alike Cyrillic or Greek letters.
"""

from __future__ import annotations

import re
import unicodedata

from pipeline.safety.finding import Finding, Severity, mask_value
from pipeline.safety.fold import fold
from pipeline.safety.registry import Scanner, register

_EN = r"(?:all |any |the |your |my )?(?:previous|prior|above|earlier|preceding|original)"
_SOURCES: tuple[tuple[str, str], ...] = (
    ("override", rf"\b(?:ignore|disregard|forget|override|bypass)\s+{_EN}\s+"
                 r"(?:instructions?|prompts?|rules?|directions?|guidelines?|context)\b"),
    ("override", r"\b(?:ignore|disregard)\s+(?:all|everything)\s+(?:you\s+were\s+told|above)\b"),
    ("reveal_prompt", r"\b(?:reveal|print|show|repeat|output|leak)\s+(?:me\s+)?(?:your|the)\s+"
                      r"(?:system\s+prompt|hidden\s+instructions?|initial\s+instructions?)\b"),
    ("persona", r"\byou\s+are\s+now\s+(?:dan|in\s+developer\s+mode|unfiltered|jailbroken)\b"),
    ("persona", r"\b(?:do\s+anything\s+now|developer\s+mode\s+enabled|jailbreak(?:ed)?\s+mode)\b"),
    ("persona", r"\b(?:act|pretend)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?an?\s+"
                r"(?:unrestricted|uncensored|unfiltered)\b"),
    ("no_limits", r"\bwithout\s+any\s+(?:restrictions|filters|limitations|censorship)\b"),
    ("fake_system", r"(?:^|\n)\s*(?:system|assistant)\s*:\s*(?:new\s+)?instructions?\b"),
    ("fake_system", r"<\|?(?:im_start|system|endoftext)\|?>"),
    ("override", r"(?:忽略|无视|忘记|忘掉|不要理会|跳过)(?:掉)?(?:你)?"
                 r"(?:之前|以上|上面|前面|先前|所有|全部|原来)"
                 r"(?:的|所有的)?(?:所有)?(?:指令|指示|提示|规则|要求|设定|内容)"),
    ("reveal_prompt", r"(?:输出|告诉我|显示|打印|重复|泄露)(?:一下)?(?:你的)?"
                      r"(?:系统提示词?|系统指令|初始指令|隐藏指令)"),
    ("persona", r"(?:你现在是|进入|开启|切换到)(?:一个)?"
                r"(?:DAN|开发者模式|越狱模式|不受限制的|没有限制的)"),
    ("no_limits", r"(?:不受任何|没有任何|不要有任何)(?:限制|约束|审查|过滤)"),
)
PATTERNS = tuple((name, re.compile(p, re.I)) for name, p in _SOURCES)
# One alternation, one pass over the text (13 separate patterns cost 13 passes).
_COMBINED = re.compile("|".join(f"(?P<p{i}>{p.pattern})" for i, (_, p) in enumerate(PATTERNS)),
                       re.I)
_NAMES = {f"p{i}": name for i, (name, _) in enumerate(PATTERNS)}
_CONFUSABLE_SCRIPTS = re.compile("[\u0370-\u03ff\u0400-\u04ff]")
_WEIGHT = {"override": 0.6, "reveal_prompt": 0.5, "persona": 0.6, "no_limits": 0.3,
           "fake_system": 0.5}

_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
                        "\U000e0000-\U000e007f]")
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

    def __init__(self, *, phrases: bool = True, invisible: bool = True,
                 confusables: bool = True, min_invisible: int = 1) -> None:
        self._phrases, self._invisible, self._confusables = phrases, invisible, confusables
        self._min_invisible = min_invisible

    def scan(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        if self._phrases:
            out += self._scan_phrases(text)
        if self._invisible:
            out += self._scan_invisible(text)
        if self._confusables:
            out += self._scan_confusables(text)
        return out

    def _scan_phrases(self, text: str) -> list[Finding]:
        folded = fold(text)
        hits = [(_NAMES[m.lastgroup or ""], m) for m in _COMBINED.finditer(folded)]
        if not hits:
            return []
        moves = {name for name, _ in hits}
        score = min(1.0, sum(_WEIGHT[m] for m in moves))
        severity = Severity.HIGH if score >= 0.8 else Severity.MEDIUM
        return [Finding("injection", name, severity, score, m.start(), m.end(),
                        text[m.start():m.end()][:80]) for name, m in hits]

    def _scan_invisible(self, text: str) -> list[Finding]:
        hits = list(_INVISIBLE.finditer(text))
        if len(hits) < self._min_invisible:
            return []
        start, end = hits[0].start(), hits[-1].end()
        names = sorted({f"U+{ord(m.group(0)):04X}" for m in hits})
        tag = any(ord(m.group(0)) >= 0xE0000 for m in hits)
        bidi = any("\u202a" <= m.group(0) <= "\u202e" or "\u2066" <= m.group(0) <= "\u2069"
                   for m in hits)
        severity = Severity.HIGH if tag or bidi else Severity.MEDIUM
        return [Finding("unicode", "invisible_characters", severity,
                        min(1.0, 0.5 + 0.1 * len(hits)), start, end,
                        f"{len(hits)} invisible: {' '.join(names[:6])}")]

    def _scan_confusables(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        if not _CONFUSABLE_SCRIPTS.search(text):
            return out
        for m in _WORD.finditer(text):
            scripts = {s for c in m.group(0) if (s := _script(c)) is not None}
            if "latin" in scripts and scripts & {"cyrillic", "greek"}:
                out.append(Finding("unicode", "mixed_script", Severity.MEDIUM, 0.7,
                                   m.start(), m.end(), mask_value(m.group(0), 1, 1)))
        return out

    def masked(self, value: str, category: str) -> str:
        if category == "mixed_script":
            return mask_value(value, 1, 1)
        if category == "invisible_characters":
            return f"[{len(value)} chars]"
        return value[:80]  # an injection phrase is the evidence, not a secret
