"""The price table: cost of tokens per model, in exact integer nano-units of a currency.

YAML, a list of entries matched in order (first match wins)::

    currency: USD                  # default currency of the entries
    models:
      - match: gpt-4o-mini         # exact model name, or a glob (gpt-4o*, qwen2.5-*)
        input: 0.15                # per million input tokens (not read from cache)
        output: 0.60               # per million output tokens (reasoning tokens included)
        cache_read: 0.075          # per million cached input tokens (default: input)
        cache_creation: 0.1875     # per million cache-write tokens (default: input)
        currency: USD              # optional, overrides the default

Prices are converted once to integer nano-units per token, so costs are exact integers that
sum the same in any order on any number of workers. A model that matches no entry is
*unpriced*: its tokens are counted as unpriced, never costed at zero.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from ..common.errors import ConfigError

CURRENCIES = frozenset(
    {"USD", "CNY", "EUR", "GBP", "JPY", "HKD", "SGD", "KRW", "INR", "CAD", "AUD", "CHF"}
)
NANOS_PER_UNIT = 10**9
_FIELDS = ("input", "output", "cache_read", "cache_creation")
DEFAULT_PRICES = Path(__file__).resolve().parent.parent / "data" / "prices.yaml"


@dataclass(frozen=True, slots=True)
class Price:
    """Nano-units of ``currency`` per token."""

    match: str
    currency: str
    input: int
    output: int
    cache_read: int
    cache_creation: int

    def cost_nanos(
        self, input_tokens: int, output_tokens: int, cache_read: int, cache_creation: int
    ) -> int:
        """Cached tokens are part of input: bill them at their own price, the rest as input."""
        uncached = max(input_tokens - cache_read - cache_creation, 0)
        return (
            uncached * self.input
            + cache_read * self.cache_read
            + cache_creation * self.cache_creation
            + output_tokens * self.output
        )


class PriceTable:
    """Ordered price entries with a per-model lookup cache (bounded)."""

    def __init__(self, prices: list[Price]) -> None:
        self.prices = prices
        self._cache: dict[str, Price | None] = {}

    def lookup(self, model: str | None) -> Price | None:
        if not model:
            return None
        try:
            return self._cache[model]
        except KeyError:
            pass
        found = next(
            (p for p in self.prices if p.match == model or fnmatch.fnmatchcase(model, p.match)),
            None,
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[model] = found
        return found

    @classmethod
    def load(cls, path: str | Path) -> PriceTable:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read price table: {exc.strerror}") from exc
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
        return cls.parse(doc, str(path))

    @classmethod
    def parse(cls, doc: Any, where: str = "<prices>") -> PriceTable:
        """Validate everything and report every error (``where: models[i].field: why``)."""
        errors: list[str] = []
        if not isinstance(doc, dict):
            raise ConfigError(f"{where}: top level must be a mapping with 'models'")
        unknown = set(doc) - {"currency", "models"}
        if unknown:
            errors.append(f"{where}: unknown keys {sorted(unknown)}")
        default_ccy = doc.get("currency", "USD")
        if default_ccy not in CURRENCIES:
            errors.append(f"{where}: currency: unknown currency {default_ccy!r}")
        models = doc.get("models")
        if not isinstance(models, list) or not models:
            errors.append(f"{where}: models: must be a non-empty list")
            models = []
        prices = []
        for i, entry in enumerate(models):
            at = f"{where}: models[{i}]"
            if not isinstance(entry, dict):
                errors.append(f"{at}: must be a mapping")
                continue
            price = _entry(entry, at, default_ccy, errors)
            if price is not None:
                prices.append(price)
        if errors:
            raise ConfigError("invalid price table:\n  " + "\n  ".join(errors))
        return cls(prices)


def _entry(entry: dict[str, Any], at: str, default_ccy: str, errors: list[str]) -> Price | None:
    bad = len(errors)
    unknown = set(entry) - {"match", "currency", *_FIELDS}
    if unknown:
        errors.append(f"{at}: unknown keys {sorted(unknown)}")
    match = entry.get("match")
    if not isinstance(match, str) or not match.strip():
        errors.append(f"{at}.match: must be a model name or glob")
    elif match.count("[") != match.count("]"):
        errors.append(f"{at}.match: bad pattern {match!r}: unbalanced brackets")
    ccy = entry.get("currency", default_ccy)
    if ccy not in CURRENCIES:
        errors.append(f"{at}.currency: unknown currency {ccy!r}")
    nanos: dict[str, int] = {}
    for name in _FIELDS:
        raw = entry.get(name)
        if raw is None:
            if name in ("input", "output"):
                errors.append(f"{at}.{name}: required (price per million tokens)")
            continue
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            errors.append(f"{at}.{name}: not a number: {raw!r}")
            continue
        if isinstance(raw, bool) or not value.is_finite() or value < 0:
            errors.append(f"{at}.{name}: must be a non-negative number, got {raw!r}")
            continue
        nanos[name] = int(value * NANOS_PER_UNIT / 10**6)  # per token, nano-units
    if len(errors) > bad:
        return None
    return Price(
        str(match),
        str(ccy),
        nanos["input"],
        nanos["output"],
        nanos.get("cache_read", nanos["input"]),
        nanos.get("cache_creation", nanos["input"]),
    )
