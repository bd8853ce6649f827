"""Credentials of common providers: OpenAI-style, Anthropic and DashScope keys, AWS access
and Bedrock keys, GitHub, GitLab, Slack, Hugging Face, npm, PyPI, SendGrid, Perplexity and
Telegram tokens, Alibaba Cloud AccessKey ids, Google API keys, Stripe keys, private key
blocks, JWTs.

Patterns follow each provider's documented prefix and length (and the shapes that public
secret scanners' test suites show in configuration files, code and logs); a JWT must decode
to a JSON header with ``alg``. Placeholders are not secrets: a value whose random part is a
run of one character (``ghp_xxxx...``), mostly an alphabet or digit sequence
(``abc123xyz456...``), or marked ``EXAMPLE``/``fake``/``dummy``/``your...`` is skipped. A masked
secret shows only its prefix (``sk-p********``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from .finding import Finding, Severity, mask_value
from .registry import Scanner, register


def _valid_jwt(value: str) -> bool:
    head = value.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


_PLACEHOLDER_WORDS = re.compile(
    r"example|sample|dummy|fake|placeholder|your|redacted|changeme|xxxx|here\b|"
    r"randomstring|token-string|my-bot|insert|replace",
    re.I,
)
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def placeholder(body: str) -> bool:
    """A value written to stand for a secret: a marker word (``EXAMPLE``, ``your...``,
    ``xxxx``), a run of one character, a long alphabet or digit sequence, or words joined by
    hyphens (``xoxa-access-token-string``)."""
    if _PLACEHOLDER_WORDS.search(body) or re.search(r"(.)\1{7,}", body):
        return True
    if re.fullmatch(r"[a-z]+(?:[-_][a-z]+)+", body):
        return True
    low = body.lower()
    return any(_ALPHABET[i : i + 10] in low for i in range(len(_ALPHABET) - 9))


def _valid_private_key(value: str) -> bool:
    """A complete block needs a real body; a truncated one (no END line) is reported."""
    if "-----END" not in value:
        return True
    body = re.sub(r"-----[A-Z ]+-----|\s|[A-Za-z-]+:[^\n]*", "", value)
    return len(body) >= 64 and re.fullmatch(r"[A-Za-z0-9+/=]+", body) is not None


@dataclass(frozen=True)
class _Rule:
    category: str
    pattern: re.Pattern[str]
    severity: Severity = Severity.CRITICAL
    keep: int = 4
    prefix: int = 0  # characters of fixed prefix before the random part (placeholder check)
    needles: tuple[str, ...] = ()  # every match contains one: the rule runs only if present


_B = r"(?<![A-Za-z0-9_-])"  # not in the middle of a longer token
_E = r"(?![A-Za-z0-9_-])"
RULES: tuple[_Rule, ...] = (
    _Rule(
        "private_key",
        re.compile(
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]{0,8192}?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----)?"
        ),
        keep=0,
        needles=("PRIVATE KEY",),
    ),
    _Rule(
        "anthropic_key",
        re.compile(_B + r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}" + _E),
        keep=7,
        prefix=14,
        needles=("sk-ant-",),
    ),
    _Rule(
        "openai_key",
        re.compile(_B + r"sk-(?:proj-|svcacct-|admin-|service-account-)[A-Za-z0-9_-]{40,}" + _E),
        keep=8,
        prefix=8,
        needles=("sk-",),
    ),
    _Rule(
        "dashscope_key",
        re.compile(_B + r"sk-[0-9a-f]{32}" + _E),
        keep=3,
        prefix=3,
        needles=("sk-",),
    ),
    _Rule(
        "openai_key",
        re.compile(_B + r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}" + _E),
        prefix=3,
        needles=("sk-",),
    ),
    _Rule(
        "openai_compatible_key",
        re.compile(_B + r"sk-[A-Za-z0-9_-]{32,}" + _E),
        Severity.HIGH,
        keep=3,
        prefix=3,
        needles=("sk-",),
    ),
    _Rule(
        "aws_access_key_id",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Z0-9])"),
        prefix=4,
        needles=("AKIA", "ASIA", "ABIA", "ACCA"),
    ),
    _Rule(
        "aws_bedrock_key",
        re.compile(_B + r"ABSK[A-Za-z0-9+/]{100,}={0,2}"),
        prefix=20,
        needles=("ABSK",),
    ),
    _Rule(
        "github_token",
        re.compile(_B + r"gh[pousr]_[A-Za-z0-9]{36,255}" + _E),
        prefix=4,
        needles=("gh", "github_pat_"),
    ),
    _Rule(
        "github_token",
        re.compile(_B + r"github_pat_[A-Za-z0-9_]{22,255}" + _E),
        keep=11,
        prefix=11,
        needles=("gh", "github_pat_"),
    ),
    _Rule(
        "gitlab_token",
        re.compile(
            _B + r"(?:glpat|gldt|glptt|glrt|glcbt|glimt|glagent|gloas|glft|glsoat)-"
            r"[A-Za-z0-9_.-]{20,}" + _E
        ),
        keep=6,
        prefix=6,
        needles=("gl",),
    ),
    _Rule(
        "slack_token",
        re.compile(  # digit segments, then a random part
            _B
            + r"xox[abposre]-(?:\d{1,2}-)?\d{6,13}-(?:\d{6,13}-)*[0-9A-Za-z]{8,}(?:-[0-9a-z]+)*"
            + _E
        ),
        keep=5,
        prefix=5,
        needles=("xox", "xapp-"),
    ),
    _Rule(
        "slack_token",
        re.compile(_B + r"(?:xoxe\.xox[bp]|xoxe)-\d-[A-Za-z0-9]{60,}" + _E),
        keep=5,
        prefix=7,
        needles=("xox", "xapp-"),
    ),
    _Rule(
        "slack_token",
        re.compile(_B + r"xapp-\d-[A-Z0-9]{9,12}-\d{9,}-[a-f0-9]{40,}" + _E),
        keep=5,
        prefix=7,
        needles=("xox", "xapp-"),
    ),
    _Rule(
        "slack_webhook",
        re.compile(
            r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/"
            r"T[A-Z0-9]+/[AB][A-Z0-9]+/[A-Za-z0-9/]+"
        ),
        keep=29,
        prefix=40,
        needles=("hooks.slack.com",),
    ),
    _Rule(
        "huggingface_token",
        re.compile(_B + r"(?:hf_|api_org_)[A-Za-z]{34}" + _E),
        keep=3,
        prefix=3,
        needles=("hf_", "api_org_"),
    ),
    _Rule("npm_token", re.compile(_B + r"npm_[A-Za-z0-9]{36}" + _E), prefix=4, needles=("npm_",)),
    _Rule(
        "pypi_token",
        re.compile(_B + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}" + _E),
        keep=5,
        prefix=20,
        needles=("pypi-",),
    ),
    _Rule(
        "sendgrid_key",
        re.compile(_B + r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}" + _E),
        keep=3,
        prefix=3,
        needles=("SG.",),
    ),
    _Rule(
        "perplexity_key",
        re.compile(_B + r"pplx-[A-Za-z0-9]{48}" + _E),
        keep=5,
        prefix=5,
        needles=("pplx-",),
    ),
    _Rule(
        "telegram_bot_token",
        re.compile(r"(?<![0-9])\d{8,10}:AA[A-Za-z0-9_-]{32,33}" + _E),
        keep=0,
        prefix=12,
        needles=(":AA",),
    ),
    _Rule(
        "alibaba_access_key_id",
        re.compile(_B + r"LTAI[A-Za-z0-9]{12,30}" + _E),
        prefix=4,
        needles=("LTAI",),
    ),
    _Rule(
        "google_api_key",
        re.compile(_B + r"AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_])"),
        prefix=4,
        needles=("AIza",),
    ),
    _Rule(
        "stripe_key",
        re.compile(_B + r"(?:sk|rk)_live_[0-9A-Za-z]{24,}" + _E),
        keep=8,
        prefix=8,
        needles=("_live_", "_test_", "_prod_"),
    ),
    _Rule(
        "stripe_key",
        re.compile(_B + r"(?:sk|rk)_(?:test|prod)_[0-9A-Za-z]{24,}" + _E),
        Severity.HIGH,
        keep=8,
        prefix=8,
        needles=("_live_", "_test_", "_prod_"),
    ),
    _Rule(
        "jwt",
        re.compile(_B + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}" + _E),
        Severity.HIGH,
        keep=3,
        needles=("eyJ",),
    ),
)
_VALIDATE = {"jwt": _valid_jwt, "private_key": _valid_private_key}


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
            if rule.needles and not any(n in text for n in rule.needles):
                continue
            for m in rule.pattern.finditer(text):
                start, end = m.span()
                if any(s < end and start < e for s, e in taken):
                    continue  # the more specific rule came first
                check = _VALIDATE.get(rule.category)
                if check is not None and not check(m.group(0)):
                    continue
                if rule.prefix and placeholder(m.group(0)[rule.prefix :]):
                    continue
                taken.append((start, end))
                out.append(
                    Finding(
                        "secret",
                        rule.category,
                        rule.severity,
                        0.99,
                        start,
                        end,
                        self._mask(m.group(0), rule),
                    )
                )
        return out

    @staticmethod
    def _mask(value: str, rule: _Rule) -> str:
        if rule.category == "private_key":
            return "-----BEGIN PRIVATE KEY----- [REDACTED]"
        return mask_value(value, keep_head=rule.keep)
