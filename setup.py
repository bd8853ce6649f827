"""The optional compiled core (everything else is in pyproject.toml).

``SPANWATCH_MYPYC=1`` compiles the modules every span passes through with mypyc; without it
(the default) the wheel is pure Python. The ``.py`` files ship in both: they are the
reference, and where a compiled module cannot load, Python imports the ``.py`` beside it.
README "Building wheels" has the commands; ``./dev compiled`` builds and tests this build.
"""

from __future__ import annotations

import os

from setuptools import setup

# The per-span path: decode and normalize (ingest), pre-aggregation and the merge (windows),
# tokens and black holes. Settings models (pydantic) stay in each stage's settings.py,
# which is not compiled. A test (tests/house/test_compiled.py) keeps this list importable.
COMPILED_STAGES = {
    "common": ("clock", "durations"),
    "ingest": (
        "content",
        "conventions",
        "dedupe",
        "inherit",
        "message",
        "normalize",
        "otlp",
        "spans",
        "tracetree",
    ),
    "windows": (
        "aggregate",
        "coalesce",
        "golden",
        "merge",
        "partial",
        "preaggregate",
        "sketch",
        "spec",
        "state",
        "values",
    ),
    "tokens": ("blackhole", "burn", "pricing"),
}
COMPILED = [
    f"spanwatch/pipeline/{stage}/{name}.py"
    for stage, names in COMPILED_STAGES.items()
    for name in names
]


def _ext_modules() -> list[object]:
    if os.environ.get("SPANWATCH_MYPYC", "0") in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as e:  # a clear error, not a silently pure wheel
        raise SystemExit(
            "SPANWATCH_MYPYC=1 needs mypy (which ships mypyc) and a C compiler: "
            "pip install mypy, then build with --no-build-isolation"
        ) from e
    return list(mypycify(COMPILED, opt_level="3", multi_file=True))


setup(ext_modules=_ext_modules(), options={"build_ext": {"parallel": os.cpu_count() or 1}})
