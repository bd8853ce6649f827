"""Train the learned injection detector (:mod:`spanwatch.pipeline.safety.classifier`) and
measure it source by source.

``python -m spanwatch.devtools.injection_train --data DIR [--out MODEL] [--report FILE]``

1. Read every source of :data:`~spanwatch.devtools.injection_data.SOURCES` found under
   ``DIR`` (clones, or bare mirrors).
2. **Leave one source out**: for each source, train on all the others and score the one held
   out, with the patterns alone, the model alone, and both (a finding from either), on the
   text as it is and wrapped in a JSON message list as instrumentations send it. Attack
   sources report recall, benign ones the share flagged. No number here comes from a source
   the model saw.
3. Train on every source and write the model (``pipeline/data/injection-model.npz``).

The model: logistic regression on hashed character n-grams, fitted by L-BFGS (scipy) with an
L2 penalty. Each source weighs in proportion to the square root of its size, so a source of
5,000 near-copies of one template does not drown one of 50 hand-written attacks; attacks and
benign texts weigh the same in total. The threshold is the score that flags
``--benign-rate`` (0.5 %) of the training benign texts, read from scores of models that did
not see them (3 folds by source), not from the fitted model's own.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spanwatch.devtools.injection_data import SOURCES, Text, corpus
from spanwatch.pipeline.safety.classifier import InjectionModel, featurize

BITS = 18
L2 = 3e-5  # per unit of total sample weight; fixed before any held-out number was read
BENIGN_RATE = 0.01  # of any benign source's texts, at most, when the model never saw it
FOLDS = 5
MODEL_PATH = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "injection-model.npz"


@dataclass
class Matrix:
    """Features of a list of texts, as a sparse matrix (CSR, built once)."""

    rows: Any  # scipy.sparse.csr_matrix

    @classmethod
    def of(cls, texts: Sequence[str], bits: int = BITS) -> Matrix:
        from scipy.sparse import csr_matrix

        indptr, indices, data = [0], [], []
        for t in texts:
            b, v = featurize(t, bits)
            indices.append(b)
            data.append(v)
            indptr.append(indptr[-1] + len(b))
        return cls(
            csr_matrix(
                (np.concatenate(data), np.concatenate(indices), np.array(indptr)),
                shape=(len(texts), 2**bits),
            )
        )


def sample_weights(texts: Sequence[Text]) -> npt.NDArray[np.float64]:
    """Each source weighs sqrt(its size); attacks and benign texts weigh the same in total."""
    sizes: dict[str, int] = {}
    for t in texts:
        sizes[t.source] = sizes.get(t.source, 0) + 1
    w = np.array([math.sqrt(sizes[t.source]) / sizes[t.source] for t in texts])
    y = np.array([t.attack for t in texts])
    for label in (True, False):
        total = w[y == label].sum()
        if total:
            w[y == label] *= 0.5 * len(texts) / total
    return w


def fit(
    x: Any, y: npt.NDArray[np.bool_], w: npt.NDArray[np.float64], l2: float = L2
) -> tuple[npt.NDArray[np.float64], float]:
    """Weighted logistic regression by L-BFGS: (weights, bias)."""
    from scipy.optimize import minimize

    yy = y.astype(np.float64)
    lam = l2 * w.sum()
    n_feat = x.shape[1]

    def loss(theta: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        coef, b = theta[:-1], theta[-1]
        z = x @ coef + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        ll = np.logaddexp(0.0, z) - yy * z  # -log likelihood, stable
        g = w * (p - yy)
        grad = np.empty_like(theta)
        grad[:-1] = x.T @ g + lam * coef
        grad[-1] = g.sum()
        return float(w @ ll + 0.5 * lam * coef @ coef), grad

    res = minimize(
        loss, np.zeros(n_feat + 1), jac=True, method="L-BFGS-B", options={"maxiter": 300}
    )
    return res.x[:-1], float(res.x[-1])


def scores(x: Any, coef: npt.NDArray[np.float64], bias: float) -> npt.NDArray[np.float64]:
    z = x @ coef + bias
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def threshold(
    texts: Sequence[Text], x: Any, w: npt.NDArray[np.float64], rate: float = BENIGN_RATE
) -> float:
    """The score at which no benign *source* the model did not see has more than ``rate`` of
    its texts flagged: sources split in :data:`FOLDS` folds, each fold scored by a model of
    the others; per benign source the score its ``1 - rate`` quantile reaches; the highest
    of those. A style of benign text the training lacks (persona prompts when only attacks
    said "act as") must not be flagged wholesale, so the threshold answers to the worst
    unseen source, not to the average."""
    names = sorted({t.source for t in texts})
    fold_of = {n: i % FOLDS for i, n in enumerate(names)}
    folds = np.array([fold_of[t.source] for t in texts])
    y = np.array([t.attack for t in texts])
    out = np.zeros(len(texts))
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        if not test.any() or not y[train].any() or y[train].all():
            continue
        coef, bias = fit(x[train], y[train], w[train])
        out[test] = scores(x[test], coef, bias)
    cuts = [
        float(np.quantile(out[[t.source == n for t in texts]], 1.0 - rate))
        for n in names
        if not any(t.attack for t in texts if t.source == n)
    ]
    return max(cuts) if cuts else 0.5


def train(texts: Sequence[Text], x: Any, *, rate: float = BENIGN_RATE) -> InjectionModel:
    y = np.array([t.attack for t in texts])
    w = sample_weights(texts)
    coef, bias = fit(x, y, w)
    cut = threshold(texts, x, w, rate)
    return InjectionModel(coef.astype(np.float32), bias, BITS, cut)


# --- leave one source out ----------------------------------------------------------------


def _wrap(text: str) -> str:
    return json.dumps([{"role": "user", "content": text}])


def evaluate(texts: Sequence[Text], x: Any, *, rate: float = BENIGN_RATE) -> list[dict[str, Any]]:
    """One row per held-out source (and per family of attack sources): the share of its
    texts the patterns, the model and both flag, as the worker scans them (the safety
    engine: a JSON message list is scanned as the text it holds), plain and JSON-wrapped."""
    from spanwatch.pipeline.safety.injection import InjectionScanner
    from spanwatch.pipeline.safety.scan import SafetyEngine

    quiet = {"invisible": False, "confusables": False}
    rules = SafetyEngine([InjectionScanner(model=False, **quiet)])
    rows = []
    names = [s.name for s in SOURCES if any(t.source == s.name for t in texts)]
    for name in names:
        held = np.array([t.source == name for t in texts])
        t0 = time.monotonic()
        model = train([t for t, h in zip(texts, held, strict=True) if not h], x[~held], rate=rate)
        learned = SafetyEngine([InjectionScanner(phrases=False, model=model, **quiet)])
        mine = [texts[int(i)] for i in np.flatnonzero(held)]
        for form in ("plain", "json"):
            sample = [t.text if form == "plain" else _wrap(t.text) for t in mine]
            by_rules = np.array([bool(rules.scan(s)) for s in sample])
            by_model = np.array([bool(learned.scan(s)) for s in sample])
            families: dict[str, list[int]] = {"*": list(range(len(mine)))}
            for j, t in enumerate(mine):
                families.setdefault(f"{t.family}/{t.lang}", []).append(j)
            for fam, members in families.items():
                m = np.array(members)
                rows.append(
                    {
                        "source": name,
                        "attack": mine[0].attack,
                        "family": fam,
                        "form": form,
                        "n": len(m),
                        "rules": float(by_rules[m].mean()),
                        "model": float(by_model[m].mean()),
                        "both": float((by_rules[m] | by_model[m]).mean()),
                        "threshold": model.threshold,
                        "seconds": round(time.monotonic() - t0, 1),
                    }
                )
        print(f"held out {name}: {len(mine)} texts, {time.monotonic() - t0:.0f} s", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder of clones or mirrors")
    ap.add_argument("--out", type=Path, default=MODEL_PATH, help="where to write the model")
    ap.add_argument("--report", type=Path, help="JSON of the leave-one-source-out rows")
    ap.add_argument("--no-loso", action="store_true", help="train the model only")
    ap.add_argument("--benign-rate", type=float, default=BENIGN_RATE)
    args = ap.parse_args(argv)
    texts = corpus(args.data)
    print(f"{len(texts)} texts from {len({t.source for t in texts})} sources", flush=True)
    x = Matrix.of([t.text for t in texts]).rows
    if not args.no_loso:
        rows = evaluate(texts, x, rate=args.benign_rate)
        if args.report:
            args.report.write_text(json.dumps(rows, indent=1) + "\n")
    model = train(texts, x, rate=args.benign_rate)
    sources = sorted({t.source for t in texts})
    meta = {
        "trained": time.strftime("%Y-%m-%d"),
        "texts": len(texts),
        "sources": [
            {"name": s.name, "repo": s.repo, "commit": s.commit, "attack": s.attack}
            for s in SOURCES
            if s.name in sources
        ],
        "l2": L2,
        "benign_rate": args.benign_rate,
    }
    model = InjectionModel(model.weights, model.bias, model.bits, model.threshold, meta)
    model.save(args.out)
    print(f"model written to {args.out} (threshold {model.threshold:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
