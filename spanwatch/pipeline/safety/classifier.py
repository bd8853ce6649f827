"""A learned prompt-injection detector beside the intent patterns: hashed character n-grams
of the folded text and a logistic model, trained at development time on public sources in
English and Chinese (``spanwatch/devtools/injection_train.py``; sources and their commits in
``spanwatch/devtools/injection_data.py``; measured source by source in docs/SAFETY.md).

Features: the text's normalized view (:func:`~pipeline.safety.textview.view`: full width,
look-alikes, case, traditional characters, invisible characters dropped) with runs of
whitespace made one space, its first :data:`HEAD_CHARS` and last :data:`TAIL_CHARS`
characters; every character n-gram of lengths 1 to 5, hashed into ``2**bits`` buckets by a
polynomial hash over code points (stable across processes and platforms); per bucket
``log(1 + count)``, the vector scaled to unit length. Score: ``sigmoid(bias + w . x)``.

Everything runs in numpy, one pass per n, so a typical prompt costs well under a millisecond
on one core (``spanwatch bench safety`` measures it). The weights ship inside the package
(``pipeline/data/injection-model.npz``, float16): nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .textview import view

NGRAMS = (1, 2, 3, 4, 5)
HEAD_CHARS = 2000  # a long jailbreak says what it is early, and often again at its end
TAIL_CHARS = 500
_PRIME = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads the n-gram hash over buckets
_SPACE = re.compile(r"\s+")
_DIGITS = str.maketrans("123456789", "000000000")
MODEL_FILE = "injection-model.npz"

Buckets = npt.NDArray[np.int64]
Values = npt.NDArray[np.float32]


def prepare(text: str) -> str:
    """The text the features are read from: folded, digits made ``0`` (an order number says
    nothing about intent), whitespace runs made one space, head and tail of a long text."""
    folded = _SPACE.sub(" ", view(text).text.translate(_DIGITS)).strip()
    if len(folded) > HEAD_CHARS + TAIL_CHARS:
        folded = folded[:HEAD_CHARS] + " " + folded[-TAIL_CHARS:]
    return f" {folded} "


def featurize(text: str, bits: int) -> tuple[Buckets, Values]:
    """(bucket, value) pairs of ``text``: unique buckets, unit-length values."""
    codes = np.frombuffer(prepare(text).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    shift = np.uint64(64 - bits)
    parts = []
    h = np.zeros(len(codes), dtype=np.uint64)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
        for n in range(1, max(NGRAMS) + 1):
            if n > len(codes):
                break
            h = h[: len(codes) - n + 1] * _PRIME + codes[n - 1 :]
            if n in NGRAMS:
                mixed = (h ^ np.uint64(n * 0x51ED27)) * _MIX
                parts.append((mixed >> shift).astype(np.int64))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    buckets, counts = np.unique(np.concatenate(parts), return_counts=True)
    values = np.log1p(counts.astype(np.float32))
    values /= np.float32(np.sqrt(float(values @ values)))
    return buckets, values


@dataclass(frozen=True)
class InjectionModel:
    """Weights of the linear model and how they were made (``meta``: sources, date,
    threshold chosen at training, per-source evaluation)."""

    weights: npt.NDArray[np.float32]
    bias: float
    bits: int
    threshold: float  # scores at or above it are findings unless configured otherwise
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def score(self, text: str) -> float:
        """Probability-like score in [0, 1] that ``text`` is a prompt injection or jailbreak."""
        buckets, values = featurize(text, self.bits)
        z = self.bias + float(self.weights[buckets] @ values)
        return float(1.0 / (1.0 + np.exp(-min(max(z, -40.0), 40.0))))

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            weights=self.weights.astype(np.float16),
            bias=np.float64(self.bias),
            bits=np.int64(self.bits),
            threshold=np.float64(self.threshold),
            meta=np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8),
        )

    @classmethod
    def load(cls, path: Path) -> InjectionModel:
        with np.load(path) as z:
            return cls(
                z["weights"].astype(np.float32),
                float(z["bias"]),
                int(z["bits"]),
                float(z["threshold"]),
                json.loads(bytes(z["meta"]).decode()),
            )


@lru_cache(maxsize=1)
def shipped_model() -> InjectionModel:
    """The model that ships in the package (loaded once per process)."""
    ref = resources.files("spanwatch.pipeline").joinpath("data", MODEL_FILE)
    with resources.as_file(ref) as path:
        return InjectionModel.load(path)
