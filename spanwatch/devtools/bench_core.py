"""``spanwatch bench core``: the compiled core (mypyc, setup.py) against its pure-Python
reference, on the same generated data, in the same run.

Each build runs in a child process of its own (the pure one imports the installed code, the
compiled one a wheel directory first on its path, as ``./dev compiled`` builds it), rounds
alternate between the two so the shared machine's noise falls on both, and each figure is
the best of its rounds. Each child prints which build it imported: a comparison of a build
with itself is refused.

Then (unless ``--no-broker``) the whole worker, every stage, one message per trace, with
each build in turn (:func:`~spanwatch.devtools.bench.worker_run`, alternating rounds): the
core is about half of a worker's CPU, so the worker gains less than the core. Each worker's
``/status`` names the build it ran; a worker that did not run the build asked for stops the
bench.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys
from spanwatch.devtools.bench import (
    _messages, best_rate, core_pass, normalize_pass, per_trace, raw_pass, worker_gc,
)
from spanwatch.runtime.build import core_build

spans, batch = int(sys.argv[1]), int(sys.argv[2])
msgs, total = _messages(spans, batch)
by_trace = [v for _, v in per_trace(msgs)]
us = lambda fn, shape: 1e6 / best_rate(fn, shape, total, repeat=1)
print(json.dumps({
    "build": core_build(),
    "raw (ParseFromString + attributes)": us(raw_pass, msgs),
    "decode + normalize": us(normalize_pass, msgs),
    "core, ~%d-span messages" % batch: us(worker_gc(core_pass), msgs),
    "core, one message per trace": us(worker_gc(core_pass), by_trace),
}))
"""


def _child(spans: int, batch: int, site: Path | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    # -P: the working directory (perhaps a checkout) never comes before the wheel directory
    out = subprocess.run(
        [sys.executable, "-P", "-c", CHILD, str(spans), str(batch)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench core: a child failed:\n{out.stderr[-2000:]}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_core(
    spans: int, batch: int, compiled: str | None, rounds: int = 3, worker: bool = True
) -> int:
    site = Path(compiled or ".compiled/site").resolve()
    if not any(site.glob("*__mypyc*")):
        print(
            f"bench core: no compiled build in {site}: build one with `./dev compiled` "
            "(or SPANWATCH_MYPYC=1 pip wheel ..., README 'Building wheels') and pass "
            "--compiled DIR",
            file=sys.stderr,
        )
        return 2
    best: dict[str, dict[str, float]] = {"pure": {}, "compiled": {}}
    builds: dict[str, str] = {}
    for _ in range(rounds):
        for name, where in (("pure", None), ("compiled", site)):
            result = _child(spans, batch, where)
            builds[name] = str(result.pop("build"))
            for k, v in result.items():
                assert isinstance(v, float)
                best[name][k] = min(best[name].get(k, float("inf")), v)
    print(f"pure: {builds['pure']}; compiled: {builds['compiled']} from {site}")
    if builds["pure"] == builds["compiled"]:
        print("bench core: both children imported the same build; nothing to compare")
        return 1
    print(f"{spans:,} spans, best of {rounds} alternating rounds, µs/span on one thread")
    print("| pass | pure Python | compiled (mypyc) | speed-up |")
    print("|---|---|---|---|")
    for k, pure in best["pure"].items():
        fast = best["compiled"][k]
        print(f"| {k} | {pure:.1f} | {fast:.1f} | {pure / fast:.2f}x |")
    if worker:
        return _bench_workers(spans, batch, site)
    return 0


def _bench_workers(spans: int, batch: int, site: Path, rounds: int = 2) -> int:
    """The whole worker with each build, alternating; CPU µs/span, every round printed."""
    from spanwatch.devtools.bench import _messages, per_trace, worker_run

    msgs, total = _messages(spans, batch)
    keyed = per_trace(msgs)
    runs: dict[str, list[float]] = {"pure": [], "compiled": []}
    with tempfile.TemporaryDirectory(prefix="spanwatch-pure-") as nothing:
        # the pure worker gets an empty folder first on its path: it imports the installed
        # code, never a compiled folder this process's own PYTHONPATH may name
        for _ in range(rounds):
            for name, where in (("pure", Path(nothing)), ("compiled", site)):
                run = worker_run(keyed, total, "", site=where)
                if (name == "compiled") != run.build.startswith("compiled"):
                    print(f"bench core: the {name} worker ran {run.build!r}; nothing to compare")
                    return 1
                runs[name].append(run.cpu_us_per_span)
    print(
        f"\na worker from Tansu, every stage, one message per trace ({len(keyed)} messages), "
        f"CPU µs/span, {rounds} alternating rounds"
    )
    print("| worker | rounds | best | speed-up (best) |")
    print("|---|---|---|---|")
    pure = min(runs["pure"])
    for name, values in runs.items():
        shown = " / ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {shown} | {min(values):.1f} | {pure / min(values):.2f}x |")
    return 0
