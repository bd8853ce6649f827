"""Loaders for public labelled metric series used by ``spanwatch bench anomaly``.

Nothing here ships data: point the loaders at clones of the public repositories.

* ``cloud-monitoring``: Microsoft's Cloud Monitoring Dataset
  (``git clone https://github.com/microsoft/cloud-monitoring-dataset``): 67 series of
  production telemetry (API request rates and latencies, MongoDB query rates, crash rates,
  purchases, ingress), per minute or per hour, points labelled by domain experts.
* ``skab``: the Skoltech Anomaly Benchmark (``git clone https://github.com/waico/SKAB``):
  34 experiments on a water-pump test bed, 8 sensors at 1 s, one labelled fault each (valve
  closures, leaks, rotor imbalance). A case alarms when any of its sensors does.
* ``nab``: the Numenta Anomaly Benchmark (``git clone https://github.com/numenta/NAB``): 58
  series (cloud CPU, disk and network, tweet volumes, ad exchange, traffic, machine
  temperature, artificial flat, step and jump series), anomalies labelled as points in
  ``labels/combined_labels.json``. **Held out**: never used to choose or tune anything; it
  is scored only to report how the detector does on series nobody here looked at.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from spanwatch.pipeline.common.errors import SpanwatchError

DEFAULT_ROOT = Path(
    os.environ.get("SPANWATCH_DATASETS", Path.home() / ".cache" / "spanwatch" / "datasets")
)
SOURCES = {
    "cloud-monitoring": (
        "cloud-monitoring-dataset",
        "https://github.com/microsoft/cloud-monitoring-dataset",
    ),
    "skab": ("SKAB", "https://github.com/waico/SKAB"),
    "nab": ("NAB", "https://github.com/numenta/NAB"),
}


@dataclass
class Case:
    """One labelled series (or several aligned sensors of one experiment)."""

    name: str
    t: list[float]  # Unix seconds
    channels: dict[str, list[float | None]]
    labels: list[int]


def _time(raw: str) -> float:
    t = dt.datetime.fromisoformat(raw.strip().strip('"').replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def _num(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def cloud_monitoring(root: Path) -> Iterator[Case]:
    files = sorted((root / "data").glob("*/*.csv"))
    if not files:
        url = SOURCES["cloud-monitoring"][1]
        raise SpanwatchError(f"{root}: no data/*/*.csv (a clone of {url})")
    for path in files:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))[1:]
        rows = [r for r in rows if len(r) >= 3]
        yield Case(
            f"{path.parent.name}/{path.stem}",
            [_time(r[0]) for r in rows],
            {"value": [_num(r[1]) for r in rows]},
            [int(float(r[2] or 0)) for r in rows],
        )


def skab(root: Path) -> Iterator[Case]:
    files = sorted(
        p for sub in ("valve1", "valve2", "other") for p in (root / "data" / sub).glob("*.csv")
    )
    if not files:
        raise SpanwatchError(f"{root}: no data/valve1/*.csv (a clone of {SOURCES['skab'][1]})")
    for path in files:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter=";")
            header = next(reader)
            rows = [r for r in reader if len(r) == len(header)]
        sensors = [h for h in header[1:] if h not in ("anomaly", "changepoint")]
        col = {h: i for i, h in enumerate(header)}
        yield Case(
            f"{path.parent.name}/{path.stem}",
            [_time(r[0]) for r in rows],
            {s: [_num(r[col[s]]) for r in rows] for s in sensors},
            [int(float(r[col["anomaly"]])) for r in rows],
        )


def nab(root: Path) -> Iterator[Case]:
    labels_file = root / "labels" / "combined_labels.json"
    files = sorted((root / "data").glob("*/*.csv"))
    if not files or not labels_file.is_file():
        raise SpanwatchError(
            f"{root}: no data/*/*.csv and labels/combined_labels.json (a clone of "
            f"{SOURCES['nab'][1]})"
        )
    labelled = json.loads(labels_file.read_text())
    for path in files:
        name = f"{path.parent.name}/{path.name}"
        with path.open(encoding="utf-8", newline="") as f:
            rows = [r for r in list(csv.reader(f))[1:] if len(r) >= 2]
        marks = {_time(x) for x in labelled.get(name, [])}
        t = [_time(r[0]) for r in rows]
        yield Case(
            f"{path.parent.name}/{path.stem}",
            t,
            {"value": [_num(r[1]) for r in rows]},
            [int(x in marks) for x in t],
        )


LOADERS = {"cloud-monitoring": cloud_monitoring, "skab": skab, "nab": nab}


def load(name: str, root: Path | None = None) -> list[Case]:
    folder, url = SOURCES[name]
    path = root or DEFAULT_ROOT / folder
    if not path.is_dir():
        raise SpanwatchError(f"{name}: {path} not found; clone it: git clone {url} {path}")
    return list(LOADERS[name](path))
