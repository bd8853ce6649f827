"""One top-level import name: the code imports pipeline/, agents/ and rules/ only as
spanwatch.pipeline, spanwatch.agents and spanwatch.rules (the names the wheel installs), so
nothing would break or shadow another package (``agents`` is the OpenAI Agents SDK's name)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.paths import ROOT

BARE = re.compile(r"^\s*(from|import)\s+(pipeline|agents|rules)\b", re.M)


def test_no_module_imports_a_bare_top_level_folder() -> None:
    files = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    bad = [
        f"{f}:{(ROOT / f).read_text()[: m.start()].count(chr(10)) + 1}"
        for f in files
        for m in BARE.finditer((ROOT / f).read_text())
    ]
    assert files and not bad, bad


def test_the_folders_are_the_spanwatch_subpackages() -> None:
    import spanwatch.agents.app
    import spanwatch.pipeline.config
    import spanwatch.rules

    assert Path(spanwatch.pipeline.config.__file__).resolve().parent == ROOT / "pipeline"
    assert Path(spanwatch.agents.app.__file__).resolve().parent == ROOT / "agents"
    assert spanwatch.rules.DEFAULT_RULES_DIR == ROOT / "rules"
    packaging = (ROOT / "pyproject.toml").read_text()
    assert 'include = ["spanwatch*"]' in packaging  # the wheel installs nothing else


def _imports(folder: str) -> dict[str, set[str]]:
    """Modules each Python file under ``folder`` imports (``from X import`` / ``import X``)."""
    out = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        found = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", path.read_text(), re.M)
        out[path.relative_to(ROOT).as_posix()] = set(found)
    return out


def test_each_audience_imports_only_what_is_below_it() -> None:
    """The pure core imports no broker code, the agents no command line or developer tools,
    and the worker runtime no developer tools (a production image needs none of them)."""
    rules = {
        "pipeline": (
            "faust",
            "aiokafka",
            "confluent_kafka",
            "spanwatch.agents",
            "spanwatch.runtime",
        ),
        "agents": (
            "spanwatch.runtime",
            "spanwatch.devtools",
            "spanwatch.commands",
            "spanwatch.cli",
        ),
        "spanwatch/runtime": ("spanwatch.devtools", "spanwatch.commands", "spanwatch.cli"),
    }
    bad = [
        f"{file} imports {mod}"
        for folder, banned in rules.items()
        for file, mods in _imports(folder).items()
        for mod in mods
        if mod.startswith(banned)
    ]
    assert not bad, bad


def test_stages_never_import_the_composed_configuration() -> None:
    """Each stage owns its configuration section; only the composition (pipeline/config.py)
    and the agents, runtime and command line read the whole ``Settings``."""
    bad = [
        file
        for file, mods in _imports("pipeline").items()
        if "spanwatch.pipeline.config" in mods and not file.endswith("pipeline/config.py")
    ]
    assert not bad, bad
