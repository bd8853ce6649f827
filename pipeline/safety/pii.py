"""Personal data: mainland China mobile numbers and resident IDs, bank cards, e-mail, IPs.

Numbers are validated, not just shaped: a resident ID needs its ISO 7064 checksum and a real
birth date, a bank card its Luhn digit and a known issuer prefix, an IP address must parse.
No match is taken from inside a longer run of digits (an order number is not a phone).
Extra regex detectors come from configuration (``custom``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.safety.finding import Finding, Severity, mask_value
from pipeline.safety.registry import Scanner, register

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def valid_cn_id(value: str) -> bool:
    """18-character resident ID: region, real birth date (1900..today), checksum."""
    if len(value) != 18 or not value[:17].isdigit() or value[0] not in "123456789":
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not dt.date(1900, 1, 1) <= born <= dt.date.today():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# issuer prefix -> card number lengths (UnionPay, Visa, Mastercard, Amex, JCB, Discover)
_ISSUERS: tuple[tuple[re.Pattern[str], frozenset[int]], ...] = tuple(
    (re.compile(p), frozenset(lengths)) for p, lengths in (
        (r"62", range(16, 20)), (r"4", (13, 16, 19)), (r"5[1-5]|2[2-7]", (16,)),
        (r"3[47]", (15,)), (r"35", range(16, 20)), (r"6011|65", range(16, 20))))


def valid_card(digits: str) -> bool:
    """Luhn, and a length that the issuer of the prefix really uses (an 18-digit number
    starting with 4 is more likely a resident ID with a typo than a Visa card)."""
    return any(p.match(digits) and len(digits) in lengths for p, lengths in _ISSUERS) \
        and luhn_ok(digits)


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _valid_ipv6(value: str) -> bool:
    return len(value) >= 6 and _valid_ip(value)  # not "::" or "a::b"


@dataclass(frozen=True)
class _Detector:
    category: str
    pattern: re.Pattern[str]
    severity: Severity
    score: float
    validate: Callable[[str], bool] | None = None
    keep: tuple[int, int] = (0, 0)  # characters shown at head/tail of the masked value
    strip: str = ""  # separators removed before validating


_NOT_DIGIT_BEFORE, _NOT_DIGIT_AFTER = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"
_BUILTIN = {
    "cn_mobile": _Detector(
        "cn_mobile",
        re.compile(_NOT_DIGIT_BEFORE + r"(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}"
                   + _NOT_DIGIT_AFTER),
        Severity.MEDIUM, 0.9, keep=(3, 4)),
    "cn_id": _Detector(
        "cn_id", re.compile(_NOT_DIGIT_BEFORE + r"\d{17}[\dXx]" + _NOT_DIGIT_AFTER),
        Severity.HIGH, 0.99, valid_cn_id, keep=(2, 2)),
    "bank_card": _Detector(
        "bank_card",
        re.compile(_NOT_DIGIT_BEFORE + r"(?:\d{4}[ -]?){3}\d{1,7}" + _NOT_DIGIT_AFTER),
        Severity.HIGH, 0.95, valid_card, keep=(0, 4), strip=" -"),
    "email": _Detector(
        "email",
        re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                   r"\.[A-Za-z]{2,24}(?![\w-])"),
        Severity.MEDIUM, 0.9, keep=(1, 0)),
    "ipv4": _Detector(
        "ip_address",
        re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)"),
        Severity.LOW, 0.6, _valid_ip, keep=(0, 0)),
    "ipv6": _Detector(
        "ip_address",
        re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
                   r"(?![0-9A-Fa-f:])"),
        Severity.LOW, 0.6, _valid_ipv6),
}


@register("pii")
class PiiScanner(Scanner):
    """Built-in PII detectors (each can be switched off) plus ``custom`` regex detectors."""

    def __init__(self, *, cn_mobile: bool = True, cn_id: bool = True, bank_card: bool = True,
                 email: bool = True, ip_address: bool = True,
                 custom: list[dict[str, Any]] | None = None) -> None:
        on = {"cn_mobile": cn_mobile, "cn_id": cn_id, "bank_card": bank_card, "email": email,
              "ipv4": ip_address, "ipv6": ip_address}
        self._detectors = [d for name, d in _BUILTIN.items() if on[name]]
        for spec in custom or ():
            self._detectors.append(_custom(dict(spec)))

    def scan(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        taken: list[tuple[int, int]] = []
        for det in self._detectors:
            for start, end, value in _matches(det, text):
                if any(s < end and start < e for s, e in taken):
                    continue  # a card number is not also a phone number
                taken.append((start, end))
                out.append(Finding("pii", det.category, det.severity, det.score, start, end,
                                   mask_value(value, *det.keep)))
        return out

    def masked(self, value: str, category: str) -> str:
        det = next((d for d in self._detectors if d.category == category), None)
        return mask_value(value, *(det.keep if det else (0, 0)))


def _matches(det: _Detector, text: str) -> Iterator[tuple[int, int, str]]:
    for m in det.pattern.finditer(text):
        value = m.group(0)
        if det.validate is not None:
            plain = value.translate({ord(c): None for c in det.strip}) if det.strip else value
            if not det.validate(plain):
                continue
        yield m.start(), m.end(), value


def _custom(spec: dict[str, Any]) -> _Detector:
    name = spec.pop("name", None)
    pattern = spec.pop("pattern", None)
    if not isinstance(name, str) or not isinstance(pattern, str):
        raise ValueError("custom detector needs 'name' and 'pattern' strings")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"custom detector {name}: bad pattern: {exc}") from None
    severity = Severity.parse(spec.pop("severity", "medium"))
    score = float(spec.pop("score", 0.8))
    keep = tuple(spec.pop("keep", (0, 0)))
    if spec:
        raise ValueError(f"custom detector {name}: unknown keys {sorted(spec)}")
    if not 0 <= score <= 1 or len(keep) != 2:
        raise ValueError(f"custom detector {name}: score in [0, 1] and keep as [head, tail]")
    return _Detector(name, compiled, severity, score, keep=(int(keep[0]), int(keep[1])))
