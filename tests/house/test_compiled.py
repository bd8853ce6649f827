"""The compiled core (setup.py, ``SPANWATCH_MYPYC=1``) and its pure-Python reference.

``./dev test`` runs the whole suite on the pure build, then ``./dev compiled`` runs the
core's stage tests again on a mypyc-built wheel with ``SPANWATCH_EXPECT_COMPILED=1``: the
last test here proves which build those tests ran on."""

from __future__ import annotations

import ast
import importlib
import os
import re
from pathlib import Path

import pytest

from spanwatch.devtools.broker import EmbeddedBroker
from spanwatch.devtools.cluster import WorkerProc
from spanwatch.runtime.build import compiled_modules, core_build
from tests.support.paths import ROOT


def _compiled_stages() -> dict[str, tuple[str, ...]]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [
            "COMPILED_STAGES"
        ]:
            return dict(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED_STAGES")


def _names() -> list[str]:
    return [
        f"spanwatch.pipeline.{stage}.{name}"
        for stage, names in _compiled_stages().items()
        for name in names
    ]


def test_the_compiled_list_names_per_span_modules_without_settings_models() -> None:
    """mypyc turns annotated class attributes into typed slots, which pydantic's field
    defaults break: settings models stay in the uncompiled settings.py of each stage."""
    names = _names()
    assert len(names) >= 20 and len(set(names)) == len(names)
    for name in names:
        path = ROOT / "pipeline" / Path(*name.split(".")[2:]).with_suffix(".py")
        text = path.read_text()
        assert not re.search(r"^class \w+\((SettingsModel|BaseModel)\)", text, re.M), path
        assert not re.search(r"^from pydantic import", text, re.M), path


def test_the_build_under_test_is_the_one_expected() -> None:
    modules = [importlib.import_module(n) for n in _names()]
    loaded = set(compiled_modules())
    if os.environ.get("SPANWATCH_EXPECT_COMPILED") == "1":
        missing = [m.__name__ for m in modules if m.__name__ not in loaded]
        assert not missing, f"not compiled: {missing}"
        assert core_build().startswith("compiled (mypyc")
    else:
        assert not loaded, f"compiled modules in the pure run: {sorted(loaded)}"
        assert core_build() == "pure Python"


@pytest.mark.broker
@pytest.mark.compiled_worker
def test_a_worker_reports_the_build_it_runs(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Its /status names the core's build, so an operator (and the compiled test run) can
    tell which one a worker runs."""
    worker = WorkerProc(broker.bootstrap, tmp_path).launch()
    try:
        status = worker.until(lambda st: st["state"] == "running", 120, "running")
    finally:
        worker.stop()
    if os.environ.get("SPANWATCH_EXPECT_COMPILED") == "1":
        assert status["core"].startswith("compiled (mypyc, "), status["core"]
    else:
        assert status["core"] == "pure Python"


@pytest.mark.broker
@pytest.mark.compiled_worker
def test_the_core_bench_runs_each_worker_on_the_build_it_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``spanwatch bench core`` runs a worker on each build, alternating, and checks each
    worker's /status. In the compiled run the wheel's folder is there, and the compiled
    worker beats nothing but itself: the table is printed. In the pure run there is no
    compiled build to give it, and the bench refuses rather than compare pure with pure."""
    from spanwatch.devtools.bench_core import _bench_workers

    compiled = os.environ.get("SPANWATCH_EXPECT_COMPILED") == "1"
    site = Path(os.environ["PYTHONPATH"]) if compiled else tmp_path / "no-wheel-here"
    rc = _bench_workers(300, 100, site, rounds=1)
    out = capsys.readouterr().out
    if compiled:
        assert rc == 0, out
        rows = {line.split("|")[1].strip(): line for line in out.splitlines() if "| " in line}
        assert {"pure", "compiled"} <= set(rows), out
        assert "1.00x" in rows["pure"]  # each build's best against the pure one's
    else:
        assert rc == 1
        assert "the compiled worker ran 'pure Python'" in out
