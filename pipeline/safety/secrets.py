"""Credentials of common providers: OpenAI-style and DashScope keys, AWS access keys, GitHub
and Slack tokens, Alibaba Cloud AccessKey ids, Google API keys, private key blocks, JWTs.

Patterns follow each provider's documented prefix and length; a JWT must decode to a JSON
header with ``alg``. A masked secret shows only its prefix (``sk-p********``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from pipeline.safety.finding import Finding, Severity, mask_value
from pipeline.safety.registry import Scanner, register


def _valid_jwt(value: str) -> bool:
    head = value.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


@dataclass(frozen=True)
class _Rule:
    category: str
    pattern: re.Pattern[str]
    severity: Severity = Severity.CRITICAL
    keep: int = 4


_B = r"(?<![A-Za-z0-9_-])"  # not in the middle of a longer token
_E = r"(?![A-Za-z0-9_-])"
RULES: tuple[_Rule, ...] = (
    _Rule("private_key", re.compile(
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]{0,8192}?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----)?"), keep=0),
    _Rule("anthropic_key", re.compile(_B + r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}" + _E),
          keep=7),
    _Rule("openai_key", re.compile(
        _B + r"sk-(?:proj-|svcacct-|admin-)[A-Za-z0-9_-]{40,}" + _E), keep=8),
    _Rule("dashscope_key", re.compile(_B + r"sk-[0-9a-f]{32}" + _E), keep=3),
    _Rule("openai_key", re.compile(_B + r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}" + _E)),
    _Rule("openai_compatible_key", re.compile(_B + r"sk-[A-Za-z0-9_-]{32,}" + _E),
          Severity.HIGH, keep=3),
    _Rule("aws_access_key_id", re.compile(
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Z0-9])")),
    _Rule("github_token", re.compile(_B + r"gh[pousr]_[A-Za-z0-9]{36,255}" + _E)),
    _Rule("github_token", re.compile(_B + r"github_pat_[A-Za-z0-9_]{22,255}" + _E), keep=11),
    _Rule("slack_token", re.compile(_B + r"xox[abpors]-[0-9A-Za-z-]{10,250}" + _E), keep=5),
    _Rule("slack_webhook", re.compile(
        r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+"), keep=29),
    _Rule("alibaba_access_key_id", re.compile(_B + r"LTAI[A-Za-z0-9]{12,20}" + _E)),
    _Rule("google_api_key", re.compile(_B + r"AIza[0-9A-Za-z_-]{35}" + _E)),
    _Rule("stripe_key", re.compile(_B + r"(?:sk|rk)_live_[0-9A-Za-z]{24,}" + _E), keep=8),
    _Rule("jwt", re.compile(
        _B + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}" + _E),
        Severity.HIGH, keep=3),
)
_VALIDATE = {"jwt": _valid_jwt}


@register("secrets")
class SecretsScanner(Scanner):
    """API keys, tokens and private keys; ``disable`` lists categories to skip."""

    def __init__(self, *, disable: list[str] | None = None) -> None:
        known = {r.category for r in RULES}
        unknown = set(disable or ()) - known
        if unknown:
            raise ValueError(f"unknown secret categories {sorted(unknown)}; known: {sorted(known)}")
        self._rules = [r for r in RULES if r.category not in set(disable or ())]

    def scan(self, text: str) -> list[Finding]:
        # One pass per rule: each pattern starts with a literal prefix that the regex engine
        # finds fast; a single alternation of all of them measured ~40% slower.
        out: list[Finding] = []
        taken: list[tuple[int, int]] = []
        for rule in self._rules:
            for m in rule.pattern.finditer(text):
                start, end = m.span()
                if any(s < end and start < e for s, e in taken):
                    continue  # the more specific rule came first
                check = _VALIDATE.get(rule.category)
                if check is not None and not check(m.group(0)):
                    continue
                taken.append((start, end))
                out.append(Finding("secret", rule.category, rule.severity, 0.99, start, end,
                                   self._mask(m.group(0), rule)))
        return out

    @staticmethod
    def _mask(value: str, rule: _Rule) -> str:
        if rule.category == "private_key":
            return "-----BEGIN PRIVATE KEY----- [REDACTED]"
        return mask_value(value, keep_head=rule.keep)

    def masked(self, value: str, category: str) -> str:
        rule = next((r for r in self._rules if r.category == category), None)
        return self._mask(value, rule) if rule else "[secret]"
