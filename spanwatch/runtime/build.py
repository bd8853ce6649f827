"""Which build of the core is running: mypyc-compiled modules or the pure-Python reference
(setup.py, README "Building wheels")."""

from __future__ import annotations

import sys
from importlib.machinery import EXTENSION_SUFFIXES


def compiled_modules() -> list[str]:
    """The loaded ``spanwatch`` modules that come from compiled extensions, by name."""
    suffixes = tuple(EXTENSION_SUFFIXES)
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name.startswith("spanwatch.")
        and str(getattr(module, "__file__", None) or "").endswith(suffixes)
    )


def core_build() -> str:
    """``"compiled (mypyc, N modules)"`` or ``"pure Python"``, for logs and bench headers."""
    n = len(compiled_modules())
    return f"compiled (mypyc, {n} modules)" if n else "pure Python"
