"""A named registry of classes built from configuration (scanners, detectors).

``registry.register("name")`` decorates a class; ``registry.build("name", options)`` makes
an instance from keyword options, turning a wrong name or option into a
:class:`~pipeline.common.errors.ConfigError` that says what was wrong. ``load`` imports the modules
whose classes register themselves, on first use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")
C = TypeVar("C", bound=type)


class Registry(Generic[T]):
    def __init__(self, what: str, load: Callable[[], None]) -> None:
        self.what, self._load, self._classes = what, load, dict[str, type[T]]()

    def register(self, name: str) -> Callable[[C], C]:
        def deco(cls: C) -> C:
            cls.name = name  # type: ignore[attr-defined]
            self._classes[name] = cls
            return cls

        return deco

    def classes(self) -> dict[str, type[T]]:
        self._load()
        return dict(self._classes)

    def build(self, name: Any, options: dict[str, Any]) -> T:
        self._load()
        if name not in self._classes:
            raise ConfigError(f"unknown {self.what} {name!r}; known: {sorted(self._classes)}")
        cls = self._classes[name]
        accepted = parameters(cls)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(
                f"{self.what.split()[0]} {name}: unknown parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(accepted) or 'none'}"
            )
        try:
            return cls(**options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.what.split()[0]} {name}: {exc}") from None


def parameters(cls: type) -> list[str]:
    """The keyword parameters a registered class takes (its constructor's, in order)."""
    sig = inspect.signature(cls)
    return [
        p.name
        for p in sig.parameters.values()
        if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
