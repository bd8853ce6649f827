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

from typing import Any, ClassVar

from ..common.registry import Registry
from .finding import Finding


class Scanner:
    """Base class: ``scan(text)`` -> findings, highest-severity first is not required. Each
    finding's ``excerpt`` is the matched value as it may be shown (masked): the engine builds
    the in-context excerpt from it, so a scanner is the only place its values are masked."""

    name: ClassVar[str] = ""

    def scan(self, text: str) -> list[Finding]:  # pragma: no cover - interface
        raise NotImplementedError


def _load_builtins() -> None:
    # imported for their @register side effect
    from . import injection, lexicon, pii, secrets  # noqa: F401


SCANNERS: Registry[Scanner] = Registry("scanner type", _load_builtins)
register = SCANNERS.register
registered = SCANNERS.classes


def build_scanner(spec: dict[str, Any]) -> Scanner:
    """``{"type": "pii", ...options}`` -> a scanner; errors are :class:`ConfigError`."""
    options = dict(spec)
    return SCANNERS.build(options.pop("type", None), options)
