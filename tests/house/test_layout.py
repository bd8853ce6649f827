"""One top-level import name: the code imports pipeline/, agents/ and rules/ only as
spanwatch.pipeline, spanwatch.agents and spanwatch.rules (the names the wheel installs), so
nothing would break or shadow another package (``agents`` is the OpenAI Agents SDK's name)."""

from __future__ import annotations

import os
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
    import spanwatch.agents.ingest
    import spanwatch.pipeline.config
    import spanwatch.rules

    # the code lives under spanwatch/, where the import names say; imports and graph tools
    # resolve real files. The top-level names are links to those folders (the brief's layout)
    for name, module in (
        ("pipeline", spanwatch.pipeline.config),
        ("agents", spanwatch.agents.ingest),
        ("rules", spanwatch.rules),
    ):
        home = ROOT / "spanwatch" / name
        assert home.is_dir() and not home.is_symlink(), home
        assert Path(module.__file__ or "").parent == home
        top = ROOT / name
        assert top.is_symlink() and top.resolve() == home, top
    assert spanwatch.rules.DEFAULT_RULES_DIR == ROOT / "spanwatch" / "rules"
    packaging = (ROOT / "pyproject.toml").read_text()
    assert 'include = ["spanwatch*"]' in packaging  # the wheel installs nothing else


def test_the_wheel_installs_the_folders_as_plain_subpackages(tmp_path: Path) -> None:
    """Built from the tracked files alone and installed without the source tree, the wheel
    holds pipeline/, agents/ and rules/ as plain folders under spanwatch/ (the top-level links
    are a checkout's convenience, not the package's shape) and imports them by those names."""
    import sys
    import zipfile

    src, dist, site = tmp_path / "src", tmp_path / "dist", tmp_path / "site"
    src.mkdir()
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    tar = subprocess.run(
        ["tar", "--null", "-T", "-", "-cf", "-"], cwd=ROOT, input=tracked, capture_output=True
    )
    subprocess.run(["tar", "-xf", "-", "-C", str(src)], input=tar.stdout, check=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
        check=True,
        capture_output=True,
        env={k: v for k, v in os.environ.items() if k != "SPANWATCH_MYPYC"},  # the default
    )
    (wheel,) = dist.glob("spanwatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "spanwatch/pipeline/config.py",
        "spanwatch/pipeline/windows/merge.py",
        "spanwatch/agents/ingest.py",
        "spanwatch/transport/app.py",
        "spanwatch/rules/__init__.py",
        "spanwatch/pipeline/data/injection-model.npz",
    ):
        assert expected in names, expected
    assert not any(n.startswith(("pipeline/", "agents/", "rules/")) for n in names)
    # without SPANWATCH_MYPYC=1 the wheel is pure Python: no compiler needed to install it
    assert not [n for n in names if n.endswith(".so")], "a default build compiled something"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import spanwatch.pipeline.config, spanwatch.agents.ingest, spanwatch.rules\n"
        "from spanwatch.pipeline.safety.classifier import shipped_model\n"
        "shipped_model()  # package data: the classifier's weights\n"
        "print(spanwatch.pipeline.config.__file__)\nprint(spanwatch.rules.DEFAULT_RULES_DIR)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(line).is_relative_to(site) for line in out), out


def _imports(folder: str) -> dict[str, set[str]]:
    """Modules each Python file under ``folder`` imports (``from X import`` / ``import X``)."""
    out = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        found = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", path.read_text(), re.M)
        out[path.relative_to(ROOT).as_posix()] = set(found)
    return out


def test_each_audience_imports_only_what_is_below_it() -> None:
    """The pure core imports no broker code; the transport (the app, its consumer, the
    firehose) no agents; the agents no command line or developer tools; and the worker
    runtime no developer tools (a production image needs none of them)."""
    rules = {
        "pipeline": (
            "faust",
            "aiokafka",
            "confluent_kafka",
            "spanwatch.agents",
            "spanwatch.transport",
            "spanwatch.runtime",
        ),
        "spanwatch/transport": (
            "spanwatch.agents",
            "spanwatch.runtime",
            "spanwatch.devtools",
            "spanwatch.commands",
            "spanwatch.cli",
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
