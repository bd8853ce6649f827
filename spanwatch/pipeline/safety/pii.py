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

from .finding import Finding, Severity, mask_value
from .registry import Scanner, register

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


# Issuer identification ranges -> card number lengths those issuers use: Visa, Mastercard,
# American Express, Diners Club, Discover, JCB, UnionPay, Maestro, Mir, RuPay, Elo,
# Hipercard, Troy, Verve.
_ISSUERS: tuple[tuple[tuple[int, int], frozenset[int]], ...] = tuple(
    ((lo, hi), frozenset(lengths))
    for lo, hi, lengths in (
        (4, 4, (13, 16, 19)),
        (51, 55, (16,)),
        (2221, 2720, (16,)),
        (34, 34, (15,)),
        (37, 37, (15,)),
        (300, 305, (14, 16, 19)),
        (36, 36, (14, 16, 19)),
        (38, 39, (14, 16, 19)),
        (6011, 6011, range(16, 20)),
        (644, 649, range(16, 20)),
        (65, 65, range(16, 20)),
        (3528, 3589, range(16, 20)),
        (62, 62, range(16, 20)),
        (8100, 8171, range(16, 20)),
        (50, 50, range(12, 20)),
        (56, 69, range(12, 20)),
        (2200, 2204, range(16, 20)),
        (60, 60, (16,)),
        (81, 82, (16,)),
        (508, 508, (16,)),
        (9792, 9792, (16,)),
        (506099, 506198, (16, 18, 19)),
        (650002, 650027, (16, 18, 19)),
    )
)


def _issuer_uses(digits: str) -> bool:
    for (lo, hi), lengths in _ISSUERS:
        width = len(str(lo))
        if len(digits) in lengths and lo <= int(digits[:width]) <= hi:
            return True
    return False


def valid_card(digits: str) -> bool:
    """Luhn, and a length that the issuer of the prefix really uses (an 18-digit number
    starting with 4 is more likely a resident ID with a typo than a Visa card)."""
    return digits.isdigit() and _issuer_uses(digits) and luhn_ok(digits)


def _valid_ip(value: str) -> bool:
    """A public address: private, loopback, link-local, reserved and netmask-looking ones
    (``192.168.1.1``, ``10.0.0.1``, ``255.255.255.0``) identify nobody."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return ip.is_global and not ip.is_multicast and not value.startswith("255.")


def _valid_ipv6(value: str) -> bool:
    return len(value) >= 6 and _valid_ip(value)  # not "::" or "a::b"


# Not personal: documentation domains (RFC 2606, RFC 6761), service mailboxes, and names
# that look like addresses but are files (``logo@2x.png``).
_RESERVED_DOMAIN = re.compile(
    r"(?:^|\.)(?:example\.(?:com|net|org)|example|test|invalid|localhost|local)$", re.I
)
_FILE_TLDS = frozenset(
    (
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "webp",
        "bmp",
        "ico",
        "pdf",
        "js",
        "mjs",
        "cjs",
        "css",
        "scss",
        "map",
        "jsx",
        "tsx",
        "vue",
        "lock",
        "whl",
        "tgz",
        "zip",
        "gz",
    )
)
_SERVICE_LOCAL = re.compile(r"^(?:git|no-?reply|do-?not-?reply|mailer-daemon)$", re.I)
_AT = str.maketrans({"＠": "@", "﹫": "@", "．": ".", "。": "."})


def _valid_email(value: str) -> bool:
    local, _, domain = value.translate(_AT).rpartition("@")
    tld = domain.rsplit(".", 1)[-1].lower()
    return not (_RESERVED_DOMAIN.search(domain) or tld in _FILE_TLDS or _SERVICE_LOCAL.match(local))


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
        re.compile(
            _NOT_DIGIT_BEFORE
            + r"(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}"
            + _NOT_DIGIT_AFTER
        ),
        Severity.MEDIUM,
        0.9,
        keep=(3, 4),
    ),
    "cn_id": _Detector(
        "cn_id",
        re.compile(_NOT_DIGIT_BEFORE + r"\d{17}[\dXx]" + _NOT_DIGIT_AFTER),
        Severity.HIGH,
        0.99,
        valid_cn_id,
        keep=(2, 2),
    ),
    "bank_card": _Detector(  # 12-19 digits, plain or in groups (4-4-4-4, 4-6-5, 4-4-4-4-3)
        "bank_card",
        re.compile(
            _NOT_DIGIT_BEFORE
            + r"(?:\d{12,19}|\d{2,6}(?:([ -])\d{2,6})(?:\1\d{1,7}){1,6})"
            + _NOT_DIGIT_AFTER
        ),
        Severity.HIGH,
        0.95,
        valid_card,
        keep=(0, 4),
        strip=" -",
    ),
    "email": _Detector(  # ASCII or internationalized, with a full-width at sign too
        "email",
        re.compile(
            r"(?<![\w.+-])[\w.%+'-]{1,64}[@＠﹫][^\W_](?:[\w-]*[^\W_])?"
            r"(?:[.．。][^\W_](?:[\w-]*[^\W_])?)*[.．。](?:[^\W\d_]{2,24}|xn--[\w-]+)"
            r"(?![\w-])"
        ),
        Severity.MEDIUM,
        0.9,
        _valid_email,
        keep=(1, 0),
    ),
    "email_obfuscated": _Detector(  # name [at] example [dot] com
        "email",
        re.compile(
            r"(?<![\w.+-])[\w.%+-]{1,64}\s*(?:\[at\]|\(at\)|\{at\}|<at>)\s*[\w-]+"
            r"(?:\s*(?:\[dot\]|\(dot\)|\{dot\}|<dot>|\.)\s*[\w-]+)+",
            re.I,
        ),
        Severity.MEDIUM,
        0.7,
        keep=(1, 0),
    ),
    "ipv4": _Detector(
        "ip_address",
        re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)"),
        Severity.LOW,
        0.6,
        _valid_ip,
        keep=(0, 0),
    ),
    "ipv6": _Detector(
        "ip_address",
        re.compile(
            r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
            r"(?![0-9A-Fa-f:])"
        ),
        Severity.LOW,
        0.6,
        _valid_ipv6,
    ),
}


@register("pii")
class PiiScanner(Scanner):
    """Built-in PII detectors (each can be switched off) plus ``custom`` regex detectors."""

    def __init__(
        self,
        *,
        cn_mobile: bool = True,
        cn_id: bool = True,
        bank_card: bool = True,
        email: bool = True,
        ip_address: bool = True,
        custom: list[dict[str, Any]] | None = None,
    ) -> None:
        on = {
            "cn_mobile": cn_mobile,
            "cn_id": cn_id,
            "bank_card": bank_card,
            "email": email,
            "email_obfuscated": email,
            "ipv4": ip_address,
            "ipv6": ip_address,
        }
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
                out.append(
                    Finding(
                        "pii",
                        det.category,
                        det.severity,
                        det.score,
                        start,
                        end,
                        mask_value(value, *det.keep),
                    )
                )
        return out


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
