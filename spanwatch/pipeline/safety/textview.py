"""A normalized view of a text for matching, with a map back to the original offsets.

Attackers and users write the same words many ways: full-width ``ｉｇｎｏｒｅ``, ``Ⓘgnore``,
Cyrillic look-alikes (``іgnоrе``), zero-width characters between every letter, traditional
characters (``請忘記之前的所有設定``), spaces or punctuation between Chinese characters
(``越 狱``, ``傻@冒``). :func:`view` folds all of them into one lower-case, simplified,
visible form and keeps, for every character of the view, the offset of the character it came
from, so a finding still points at the user's own text.

Per character: invisible format characters (zero-width, bidi controls, tag characters, soft
hyphen, variation selectors) are dropped; NFKC (full-width, circled and other compatibility
forms); Cyrillic/Greek look-alikes -> Latin; curly quotes -> straight; lower case;
traditional -> simplified Chinese (OpenCC's character tables, from
``opencc-python-reimplemented``). With ``join``, characters spread out with separators are
closed up (CJK characters, single Latin letters).

Most texts need no character removed or expanded: they are folded with one
``str.translate`` (a cached table) and an identity offset map; only texts with invisible or
expanding characters take the per-character path.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

_LOOKALIKES = {  # Cyrillic and Greek letters that pass for Latin ones
    "а": "a",
    "е": "e",
    "о": "o",
    "р": "p",
    "с": "c",
    "у": "y",
    "х": "x",
    "і": "i",
    "ј": "j",
    "ѕ": "s",
    "ԁ": "d",
    "һ": "h",
    "ԛ": "q",
    "ԝ": "w",
    "м": "m",
    "н": "h",
    "т": "t",
    "в": "b",
    "к": "k",
    "г": "r",
    "ӏ": "l",
    "α": "a",
    "ε": "e",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "ν": "v",
    "ι": "i",
    "κ": "k",
    "χ": "x",
    "γ": "y",
    "ɡ": "g",
    "ı": "i",
    "ℓ": "l",
    "‘": "'",
    "’": "'",
    "‛": "'",
    "ʼ": "'",
    "“": '"',
    "”": '"',
    "„": '"',
}
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U0001d173-\U0001d17a"
    "\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)


def invisible(c: str) -> bool:
    """A character a reader cannot see (format controls, variation selectors, fillers)."""
    return _INVISIBLE.match(c) is not None or unicodedata.category(c) == "Cf"


@lru_cache(maxsize=1)
def _simplified() -> dict[str, str]:
    """Traditional -> simplified, one character to one character (OpenCC's tables)."""
    out: dict[str, str] = {}
    root = resources.files("opencc") / "dictionary"
    for name in ("TSCharacters.txt", "HKVariantsRev.txt", "TWVariantsRev.txt"):
        file = root / name
        if not file.is_file():
            continue
        for line in file.read_text(encoding="utf-8").splitlines():
            src, _, dst = line.partition("\t")
            target = dst.split(" ")[0] if dst else ""
            if len(src) == 1 and len(target) == 1 and src != target:
                out.setdefault(src, target)
    return out


@lru_cache(maxsize=65536)
def fold_char(c: str) -> str:
    """What one character becomes in the view ('' for an invisible one; may be several)."""
    if c.isascii():
        return c.lower()
    if invisible(c):
        return ""
    simplified = _simplified()
    out = unicodedata.normalize("NFKC", c)
    if len(out) == 3 and out[0] == "(" and out[2] == ")":  # parenthesized: ⒦ -> k
        out = out[1]
    return "".join(
        simplified.get(ch, ch) for ch in "".join(_LOOKALIKES.get(x, x) for x in out).lower()
    )


class _OneToOne(dict[int, int]):
    """``str.translate`` table: a character to its folded character, filled on first use
    (only for characters whose fold is exactly one character)."""

    def __missing__(self, key: int) -> int:
        folded = fold_char(chr(key))
        value = ord(folded) if len(folded) == 1 else key
        self[key] = value
        return value


_TABLE = _OneToOne()


def _needs_slow_path(text: str) -> bool:
    if text.isascii():
        return False
    if _INVISIBLE.search(text) is not None:
        return True
    return any(len(fold_char(c)) != 1 for c in set(text))


@dataclass(frozen=True, slots=True)
class TextView:
    """``text`` is the view; ``index[i]`` the original offset of ``text[i]`` when characters
    were expanded, or else ``dropped``: the view offsets at which original characters were
    left out (none of either: offsets are the same)."""

    text: str
    index: tuple[int, ...] | None
    length: int  # of the original
    dropped: tuple[int, ...] = ()

    def offset(self, i: int) -> int:
        if self.index is not None:
            return self.index[i] if i < len(self.index) else self.length
        if i >= len(self.text):
            return self.length
        return i + bisect_right(self.dropped, i)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original offsets of the view's ``text[start:end]``."""
        if end <= start:
            return self.offset(start), self.offset(start)
        return self.offset(start), self.offset(end - 1) + 1

    @property
    def hidden(self) -> int:
        """Original characters that the view drops."""
        return self.length - len(self.text)


def view(text: str, *, join: bool = False) -> TextView:
    """The folded view of ``text``; ``join`` also closes up characters spread out with
    separators: CJK characters (``越 狱``, ``傻@冒``) and single letters or digits
    (``b o m b``, ``b.o.m.b``)."""
    if not _needs_slow_path(text):
        folded = text.translate(_TABLE)
        if not join:
            return TextView(folded, None, len(text))
        drops = sorted(_spread_separators(folded) | _cjk_separators(folded))
        if not drops:
            return TextView(folded, None, len(text))
        keep, prev = [], 0
        for d in drops:
            keep.append(folded[prev:d])
            prev = d + 1
        keep.append(folded[prev:])
        shifted = tuple(d - k for k, d in enumerate(drops))  # view offset of each drop
        return TextView("".join(keep), None, len(text), shifted)
    chars: list[str] = []
    index: list[int] = []
    for i, c in enumerate(text):
        for ch in fold_char(c):
            chars.append(ch)
            index.append(i)
    if join:
        folded = "".join(chars)
        gone = _spread_separators(folded) | _cjk_separators(folded)
        chars = [c for i, c in enumerate(chars) if i not in gone]
        index = [x for i, x in enumerate(index) if i not in gone]
    return TextView("".join(chars), tuple(index), len(text))


# single characters spread out by one repeated separator: four or more ("b o m b",
# "2*踢*脚*批*发*q*q", "香蕉5 4 手 狗": the first and last may touch a word), or three
# that stand alone ("s.e.x"); "and a dog" stays as it is
_SEP = r"[ .\-*_·+/|~@#,，、]{1,3}"
_SPREAD = re.compile(
    rf"[^\W_](?P<sep>{_SEP})[^\W_](?:(?P=sep)[^\W_]){{2,}}|"
    rf"(?<![^\W_])[^\W_](?P<s3>{_SEP})[^\W_](?P=s3)[^\W_](?![^\W_])"
)
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002fa1f"
_CJK_GAP = re.compile(  # separators between two CJK characters, or a CJK one and a letter
    rf"(?<=[{_CJK}])(?:\s|[^\w\s]){{1,3}}(?=[^\W_])|(?<=[^\W_])(?:\s|[^\w\s]){{1,3}}(?=[{_CJK}])"
)


def _spread_separators(text: str) -> set[int]:
    return {
        i
        for m in _SPREAD.finditer(text)
        for i in range(m.start(), m.end())
        if not text[i].isalnum()
    }


def _cjk_separators(text: str) -> set[int]:
    return {i for m in _CJK_GAP.finditer(text) for i in range(m.start(), m.end())}


def cjk(c: str) -> bool:
    o = ord(c)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2FA1F
