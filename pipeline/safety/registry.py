"""The scanner contract and the registry that builds scanners from configuration.

A scanner is a small class whose constructor takes keyword-only options and whose
:meth:`Scanner.scan` returns findings for one text. Each built-in check lives in its own module
and registers itself under a name; configuration lists names with options::

    safety:
      scanners:
        - {type: pii, cn_mobile: true}
        - {type: lexicon, lexicons: [{path: /etc/spanwatch/words.txt, category: policy}]}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pipeline.errors import ConfigError
from pipeline.safety.finding import Finding


class Scanner:
    """Base class: ``scan(text)`` -> findings, highest-severity first is not required."""

    name: ClassVar[str] = ""

    def scan(self, text: str) -> list[Finding]:  # pragma: no cover - interface
        raise NotImplementedError

    def masked(self, value: str, category: str) -> str:
        """How a matched value of ``category`` is shown (default: fully masked)."""
        return f"[{category}]"


S = TypeVar("S", bound=type[Scanner])
_REGISTRY: dict[str, type[Scanner]] = {}


def register(name: str) -> Callable[[S], S]:
    def deco(cls: S) -> S:
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return deco


def registered() -> dict[str, type[Scanner]]:
    _load_builtins()
    return dict(_REGISTRY)


def build_scanner(spec: dict[str, Any]) -> Scanner:
    """``{"type": "pii", ...options}`` -> a scanner; errors are :class:`ConfigError`."""
    _load_builtins()
    options = dict(spec)
    kind = options.pop("type", None)
    if kind not in _REGISTRY:
        raise ConfigError(f"unknown scanner type {kind!r}; known: {sorted(_REGISTRY)}")
    try:
        return _REGISTRY[kind](**options)
    except TypeError as exc:
        raise ConfigError(f"scanner {kind}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"scanner {kind}: {exc}") from None


def _load_builtins() -> None:
    # imported for their @register side effect
    from pipeline.safety import injection, lexicon, pii, secrets  # noqa: F401
