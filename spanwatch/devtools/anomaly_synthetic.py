"""Labelled series of the kinds the public sets lack, generated from a seed (``bench anomaly``).

The public sets here (cloud-monitoring, SKAB) hold smooth telemetry and sensor experiments.
Real monitoring also has, and a detector must not call routine behaviour an anomaly on:

* ``bursty_counts``: event counts per 5 minutes (mentions, tweets, queue arrivals):
  overdispersed (negative binomial) around a daily cycle, with routine bursts a few times a
  day; labelled: one surge far beyond any burst, and one stretch where counting stops (0);
* ``cloud_cpu``: a host's CPU % per 5 minutes: noisy around a level that steps to a new
  level now and then (a deployment, a rebalanced load) and stays there; labelled: each step
  that more than doubles the load, and one runaway climb to 100 %;
* ``flat_then_moving``: a metric that sits exactly flat for hours (an idle queue, a stuck
  exporter) and then moves again with its usual noise; labelled: the moment it starts again;
* ``discrete_levels``: an integer gauge (replicas, connections in a small pool) that moves
  between a few levels; labelled: a jump to a level never seen.

Labels mark the first points of each incident (as NAB's windows are centred on them); the
window score then gives its usual windows around them.
"""

from __future__ import annotations

import math

import numpy as np

from spanwatch.devtools.public_series import Case

STEP_S = 300.0
N = 4000  # ~2 weeks at 5 minutes


def _case(name: str, values: np.ndarray, labels: np.ndarray, t0: float = 1.7e9) -> Case:
    t = [t0 + i * STEP_S for i in range(len(values))]
    return Case(name, t, {"value": [float(v) for v in values]}, [int(x) for x in labels])


def _daily(i: np.ndarray) -> np.ndarray:
    return 1.0 + 0.5 * np.sin(2 * math.pi * i * STEP_S / 86_400.0)


def bursty_counts(rng: np.random.Generator, k: int) -> Case:
    i = np.arange(N)
    mean = 20.0 * _daily(i)
    bursts = rng.random(N) < 4 / (86_400 / STEP_S)  # about four a day
    mean = np.where(bursts, mean * rng.uniform(3, 6, N), mean)
    r = 3.0  # negative binomial dispersion: variance = m + m^2 / r
    x = rng.negative_binomial(r, r / (r + mean)).astype(float)
    labels = np.zeros(N, dtype=int)
    at = int(rng.integers(N // 3, N // 2))
    x[at : at + 6] = mean[at : at + 6] * 40
    labels[at : at + 6] = 1
    at = int(rng.integers(2 * N // 3, N - 100))
    x[at : at + 24] = 0.0
    labels[at : at + 24] = 1
    return _case(f"bursty_counts/{k}", x, labels)


def cloud_cpu(rng: np.random.Generator, k: int) -> Case:
    level = np.empty(N)
    labels = np.zeros(N, dtype=int)
    cur, i = rng.uniform(10, 25), 0
    while i < N:
        run = int(rng.integers(300, 900))
        level[i : i + run] = cur
        nxt = cur * rng.choice([0.6, 0.8, 1.25, 1.6, 2.5])
        nxt = float(min(max(nxt, 3.0), 70.0))
        if i + run < N and nxt > 2.0 * cur:
            labels[i + run : i + run + 3] = 1
        cur, i = nxt, i + run
    x = level * (1 + 0.08 * rng.standard_normal(N)) + rng.gamma(1.0, 0.6, N)
    at = int(rng.integers(N - 600, N - 200))
    x[at : at + 120] = np.minimum(x[at] + np.arange(120) * 1.5, 100.0)
    labels[at : at + 5] = 1
    return _case(f"cloud_cpu/{k}", np.clip(x, 0, 100), labels)


def flat_then_moving(rng: np.random.Generator, k: int) -> Case:
    base = 50 + 10 * np.sin(2 * math.pi * np.arange(N) * STEP_S / 86_400.0)
    x = base + 2.0 * rng.standard_normal(N)
    labels = np.zeros(N, dtype=int)
    start = int(rng.integers(N // 3, N // 2))
    length = int(rng.integers(150, 400))  # 12 to 33 hours flat
    x[start : start + length] = round(float(x[start]), 1)
    labels[start + length : start + length + 3] = 1
    return _case(f"flat_then_moving/{k}", x, labels)


def discrete_levels(rng: np.random.Generator, k: int) -> Case:
    levels = np.array([2.0, 3.0, 4.0])
    x = np.empty(N)
    cur = 1
    for i in range(N):
        if rng.random() < 0.01:
            cur = int(rng.integers(0, len(levels)))
        x[i] = levels[cur]
    labels = np.zeros(N, dtype=int)
    at = int(rng.integers(N // 2, N - 100))
    x[at : at + 20] = 12.0
    labels[at : at + 3] = 1
    return _case(f"discrete_levels/{k}", x, labels)


KINDS = (bursty_counts, cloud_cpu, flat_then_moving, discrete_levels)


def cases(seed: int = 2026, per_kind: int = 4) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [kind(rng, k) for kind in KINDS for k in range(per_kind)]
