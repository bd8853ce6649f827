"""Prompt clusters per application, online: what users ask, how the mix moves, what is new.

Features need no downloaded weights: a prompt is normalized (NFKC, lower case, digits folded,
spaces collapsed) and cut into character trigrams, which works for Chinese and English alike;
a 64-bit SimHash of the trigram counts is its fingerprint (:func:`fingerprint`). Near-identical
prompts (the same template with another order number or question) differ in a few bits.

Clustering must give one worker's answer with N workers, so nothing depends on arrival order:

* ingest samples prompts by a hash of their span id (the same calls at any worker) and sends
  ``(time, span, trace, fingerprint)`` in partials of kind ``clusters`` (one window shape,
  ``clusters.window``) to the owner of the application's series;
* a window holds the ``max_samples`` samples with the smallest span hashes
  (:class:`ClusterSamples`, a bottom-k sketch: merging is a union, exact in any order);
* when the window closes, the owner runs leader clustering over its samples sorted by
  (time, span id) against the application's clusters so far (:class:`ClusterModel`, kept in
  the series state and saved with it), so every owner that closes the same windows in order
  reaches the same clusters.

A closed window reports how many clusters it saw, the largest one's share, clusters that are
new (first seen in this window with at least ``min_new_size`` samples, once ``warmup_windows``
windows were seen), and drift: the total
variation distance between this window's cluster shares and the decayed mix of earlier windows
(0: the same mix, 1: nothing in common).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import orjson
from pydantic import Field

from ..common.errors import ConfigError
from ..common.settings import SettingsModel

BITS = 64
MAX_CHARS = 4000  # a prompt's head carries its template; very long context adds nothing
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    t = unicodedata.normalize("NFKC", text[:MAX_CHARS]).lower()
    return _SPACE.sub(" ", _DIGITS.sub("0", t)).strip()


def _hash64(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "big")


def fingerprint(text: str) -> int:
    """64-bit SimHash of the character trigrams of ``text`` (0 for empty text)."""
    t = normalize_text(text)
    if not t:
        return 0
    grams: dict[str, int] = {}
    for i in range(max(len(t) - 2, 1)):
        g = t[i : i + 3]
        grams[g] = grams.get(g, 0) + 1
    hashes = np.array([_hash64(g) for g in grams], dtype=">u8")
    weights = np.array(list(grams.values()), dtype=np.float64)
    bits = np.unpackbits(hashes.view(np.uint8).reshape(-1, 8), axis=1)  # MSB first
    votes = (weights[:, None] * (bits.astype(np.float64) * 2 - 1)).sum(axis=0)
    out = 0
    for v in votes:
        out = (out << 1) | int(v > 0)
    return out


Featurizer = Callable[[str], int]


def embedding_fingerprint(vector: Sequence[float]) -> int:
    """64-bit SimHash of an embedding (signs of 64 fixed random hyperplanes, the same in
    every process): close vectors differ in few bits, so an embedding model plugs into the
    same clustering as the trigram fingerprint."""
    v = np.asarray(vector, dtype=np.float64)
    planes = _planes(v.shape[0])
    out = 0
    for bit in planes @ v > 0:
        out = (out << 1) | int(bit)
    return out


@functools.lru_cache(maxsize=8)
def _planes(dim: int) -> np.ndarray:
    return np.random.default_rng(20261204).standard_normal((BITS, dim))


def load_featurizer(spec: str) -> Featurizer:
    """``ngram`` (:func:`fingerprint`, the default) or ``module:function``: a callable that maps
    a prompt to a 64-bit fingerprint (for an embedding model: ``embedding_fingerprint(
    model.embed(text))``). Raises :class:`ConfigError` with one line when it cannot be used."""
    if spec == "ngram":
        return fingerprint
    module, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr) if attr else None
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"clusters.featurizer {spec!r}: {exc}") from None
    if not callable(fn):
        raise ConfigError(f"clusters.featurizer {spec!r}: want 'ngram' or 'module:function'")
    probe = fn("where is my parcel?")
    if not isinstance(probe, int) or not 0 <= probe < 2**BITS:
        raise ConfigError(f"clusters.featurizer {spec!r} must return a 64-bit unsigned int")
    return cast(Featurizer, fn)


def sample_key(span_id: str) -> int:
    """Where a call falls in the sampling order: the same at every worker."""
    return _hash64("sample:" + span_id)


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass
class ClusterSamples:
    """Sampled prompts of one application in one window (bottom-k by :func:`sample_key`)."""

    limit: int = 500
    samples: dict[int, tuple[int, str, str, int]] = field(default_factory=dict)
    seen: int = 0  # prompts sent for this window (sampled in or not)
    late: int = 0

    @property
    def count(self) -> int:
        return self.seen

    def add(self, key: int, t_ns: int, span_id: str, trace_id: str, fp: int) -> None:
        self.seen += 1
        self.samples[key] = (t_ns, span_id, trace_id, fp)
        self._trim()

    def _trim(self) -> None:
        if len(self.samples) > self.limit:
            for k in sorted(self.samples)[self.limit :]:
                del self.samples[k]

    def merge(self, other: ClusterSamples) -> None:
        # every partial of a deployment carries its configured limit; an empty aggregate
        # (made by the owner for a new window) takes it from the partial
        empty = not self.seen and not self.samples and not self.late
        self.limit = other.limit if empty else max(self.limit, other.limit)
        self.seen += other.seen
        self.late += other.late
        self.samples.update(other.samples)
        self._trim()

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "seen": self.seen,
            "late": self.late,
            "samples": [[k, *v] for k, v in sorted(self.samples.items())],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterSamples:
        return cls(
            int(d.get("limit", 500)),
            {int(s[0]): (int(s[1]), str(s[2]), str(s[3]), int(s[4])) for s in d["samples"]},
            int(d.get("seen", 0)),
            int(d.get("late", 0)),
        )

    def ordered(self) -> list[tuple[int, str, str, int]]:
        """The samples in the order every owner clusters them: (time, span id)."""
        return sorted(self.samples.values())

    def result(self, size_s: float) -> dict[str, Any]:
        return {"samples": len(self.samples), "seen": self.seen, "late": self.late}


@dataclass
class Cluster:
    id: int
    rep: int  # representative fingerprint: the majority of its members' bits
    votes: list[int]  # per bit: members with the bit set minus members without it
    size: int = 0
    first_start: int = 0  # start of the window it was first seen in
    last_start: int = 0
    example: tuple[str, str] = ("", "")  # (trace id, span id) of its first member
    known: bool = False  # reported as new already, or there from the warm-up

    def add(self, fp: int) -> None:
        self.size += 1
        for i in range(BITS):
            self.votes[i] += 1 if fp >> (BITS - 1 - i) & 1 else -1
        rep = 0
        for v in self.votes:
            rep = (rep << 1) | int(v > 0)
        self.rep = rep


@dataclass
class ClusterModel:
    """The clusters of one application so far, and its decayed cluster mix."""

    clusters: dict[int, Cluster] = field(default_factory=dict)
    next_id: int = 1
    mix: dict[int, float] = field(default_factory=dict)  # cluster id -> decayed share
    windows: int = 0
    samples: int = 0  # clustered so far

    def update(
        self,
        start_ns: int,
        size_ns: int,
        samples: list[tuple[int, str, str, int]],
        cfg: ClusterSettings,
        members: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """Cluster one closed window's samples (in :meth:`ClusterSamples.ordered` order);
        returns the window's cluster fields for its record. ``members``, when given, gets
        each sample's cluster id by span id (evaluations)."""
        counts: dict[int, int] = {}
        for _, span_id, trace_id, fp in samples:
            best = min(
                self.clusters.values(),
                key=lambda c: (distance(c.rep, fp), c.id),
                default=None,
            )
            if best is None or distance(best.rep, fp) > cfg.max_distance:
                best = self._new(fp, start_ns, (trace_id, span_id))
            best.add(fp)
            best.last_start = start_ns
            if members is not None:
                members[span_id] = best.id
            counts[best.id] = counts.get(best.id, 0) + 1
        total = sum(counts.values())
        shares = {cid: n / total for cid, n in counts.items()} if total else {}
        both = sorted(set(shares) | set(self.mix))
        drift = (
            0.5 * sum(abs(shares.get(c, 0.0) - self.mix.get(c, 0.0)) for c in both)
            if shares and self.mix
            else None
        )
        if shares:
            keep = 1.0 - cfg.mix_weight
            mix = {c: v * keep for c, v in self.mix.items()}
            for c, share in sorted(shares.items()):
                mix[c] = mix.get(c, 0.0) + share * (1.0 - keep if self.mix else 1.0)
            norm = sum(mix.values())
            self.mix = {c: v / norm for c, v in mix.items() if v / norm >= 1e-4}
            self.windows += 1
        # New: a cluster that first reaches ``min_new_size`` members in one window (its first
        # window may hold only the first one or two), once the warm-up is over: windows AND
        # samples seen before this one. Windows alone do not say the model has seen the
        # usual kinds: a worker that starts reads back-dated spans of long traces, whose
        # windows close at once with a sample or two each (a usual kind then looked new).
        warm = self.windows - 1 >= cfg.warmup_windows and self.samples >= cfg.warmup_samples
        self.samples += total
        new = []
        for cid in sorted(counts):
            cluster = self.clusters[cid]
            if not cluster.known and (not warm or counts[cid] >= cfg.min_new_size):
                cluster.known = True
                if warm:
                    new.append(cid)
        self._forget(start_ns - cfg.forget_after_windows * size_ns, cfg.max_clusters)
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: cfg.top_n]
        return {
            "clusters": len(counts),
            "largest_cluster_share": max(shares.values()) if shares else None,
            "new_clusters": len(new),
            "cluster_drift": drift,
            "top_clusters": [self._describe(c, n, total, c in new) for c, n in top],
            "new": [self._describe(c, counts[c], total, True) for c in new],
        }

    def _new(self, fp: int, start_ns: int, example: tuple[str, str]) -> Cluster:
        c = Cluster(self.next_id, fp, [0] * BITS, 0, start_ns, start_ns, example)
        self.clusters[c.id] = c
        self.next_id += 1
        return c

    def _describe(self, cid: int, n: int, total: int, new: bool) -> dict[str, Any]:
        c = self.clusters[cid]
        return {
            "id": f"c{cid}",
            "size": n,
            "share": n / total,
            "new": new,
            "members_total": c.size,
            "example_trace_id": c.example[0],
            "example_span_id": c.example[1],
        }

    def _forget(self, horizon_ns: int, max_clusters: int) -> None:
        """Bounded: clusters unseen since ``horizon_ns`` go, then the ones seen longest ago
        (ties: the smallest) beyond ``max_clusters``."""
        for cid in [c.id for c in self.clusters.values() if c.last_start < horizon_ns]:
            del self.clusters[cid]
        if len(self.clusters) > max_clusters:
            order = sorted(self.clusters.values(), key=lambda c: (c.last_start, c.size, c.id))
            for c in order[: len(self.clusters) - max_clusters]:
                del self.clusters[c.id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "clusters": [
                [
                    c.id,
                    c.rep,
                    c.votes,
                    c.size,
                    c.first_start,
                    c.last_start,
                    list(c.example),
                    c.known,
                ]
                for c in self.clusters.values()
            ],
            "next_id": self.next_id,
            "mix": [[c, v] for c, v in self.mix.items()],
            "windows": self.windows,
            "samples": self.samples,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterModel:
        clusters = {
            int(c[0]): Cluster(
                int(c[0]),
                int(c[1]),
                [int(v) for v in c[2]],
                int(c[3]),
                int(c[4]),
                int(c[5]),
                (str(c[6][0]), str(c[6][1])),
                bool(c[7]),
            )
            for c in d["clusters"]
        }
        return cls(
            clusters,
            int(d["next_id"]),
            {int(c): float(v) for c, v in d["mix"]},
            int(d.get("windows", 0)),
            int(d.get("samples", 0)),
        )


def clusters_series_id(service: str) -> str:
    return orjson.dumps(["@clusters", service]).decode()


class ClusterSettings(SettingsModel):
    """Prompt clusters per application (docs/SCHEMAS.md ``spanwatch.clusters``)."""

    enabled: bool = True
    # "ngram" (character trigrams, no weights) or "module:function" returning a 64-bit
    # fingerprint, e.g. a local embedding model through embedding_fingerprint()
    featurizer: str = "ngram"
    window: str = "1m"
    sample_rate: float = Field(0.25, gt=0, le=1)  # of LLM calls with an inline prompt
    max_samples: int = Field(500, ge=1)  # per application and window (bottom-k)
    max_distance: int = Field(12, ge=0, le=64)  # SimHash bits a member may differ in
    min_new_size: int = Field(3, ge=1)  # samples a new cluster needs in its first window
    # nothing is new until the application's clusters have seen this many windows, and this
    # many samples in them (the usual kinds of prompt all seen)
    warmup_windows: int = Field(2, ge=1)
    warmup_samples: int = Field(50, ge=0)
    mix_weight: float = Field(0.2, gt=0, le=1)  # weight of the newest window in the mix
    forget_after_windows: int = Field(1440, ge=1)  # a day of 1m windows
    max_clusters: int = Field(200, ge=1)
    top_n: int = Field(5, ge=0)
