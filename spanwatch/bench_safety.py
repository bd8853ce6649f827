"""``spanwatch bench safety``: scanning speed and accuracy of the built-in content checks.

* Speed: MB/s of UTF-8 text per core (CPU time of this process) for each scanner alone and
  for all of them together, on mixed Chinese/English text, with the built-in lexicon plus a
  generated 10,000-term lexicon.
* Accuracy: precision and recall per kind on a generated labelled corpus
  (:mod:`spanwatch.safety_corpus`), planted near-misses included. A finding counts as true
  when a label of the same kind overlaps it.
"""

from __future__ import annotations

import time
from collections import Counter

from pipeline.safety.engine import SafetyEngine
from pipeline.safety.lexicon import LexiconScanner
from pipeline.safety.registry import Scanner, build_scanner
from spanwatch.safety_corpus import Sample, corpus, lexicon_terms


def _rate(scanners: list[Scanner], texts: list[str]) -> float:
    engine = SafetyEngine(scanners)
    size = sum(len(t.encode()) for t in texts)
    best = 0.0
    for _ in range(3):
        t0 = time.process_time()
        for t in texts:
            engine.scan(t)
        best = max(best, size / max(time.process_time() - t0, 1e-9) / 1e6)
    return best


def bench_safety(texts: int = 2000, terms: int = 10_000) -> int:
    vocab = lexicon_terms(terms)
    t0 = time.perf_counter()
    lexicon = LexiconScanner(lexicons=[{"terms": vocab, "category": "bench"}])
    build_s = time.perf_counter() - t0
    samples = corpus(texts, terms=vocab)
    body = [s.text for s in samples]
    size = sum(len(t.encode()) for t in body)
    print(f"data: {len(body)} texts, {size / 1e6:.1f} MB UTF-8 (mixed Chinese/English); "
          f"lexicon {lexicon.size:,} terms (built in {build_s * 1000:.0f} ms)")
    scanners = {"pii": build_scanner({"type": "pii"}),
                "secrets": build_scanner({"type": "secrets"}),
                "injection": build_scanner({"type": "injection"}), "lexicon": lexicon}
    for name, sc in scanners.items():
        print(f"  {name:<10} {_rate([sc], body):8.1f} MB/s per core")
    print(f"  {'all':<10} {_rate(list(scanners.values()), body):8.1f} MB/s per core")
    _accuracy(SafetyEngine(list(scanners.values())), samples)
    return 0


def _accuracy(engine: SafetyEngine, samples: list[Sample]) -> None:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for s in samples:
        findings = [f for f in engine.scan(s.text) if f.kind != "unicode"]
        for kind, _, start, end in s.labels:
            hit = any(f.kind == kind and f.start < end and start < f.end for f in findings)
            (tp if hit else fn)[kind] += 1
        for f in findings:
            if not any(k == f.kind and f.start < e and s0 < f.end for k, _, s0, e in s.labels):
                fp[f.kind] += 1
    print("accuracy on the labelled corpus (near-misses planted):")
    print(f"  {'kind':<10} {'labels':>7} {'precision':>10} {'recall':>8}")
    for kind in sorted(set(tp) | set(fn) | set(fp)):
        p = tp[kind] / max(tp[kind] + fp[kind], 1)
        r = tp[kind] / max(tp[kind] + fn[kind], 1)
        print(f"  {kind:<10} {tp[kind] + fn[kind]:>7} {p:>10.3f} {r:>8.3f}")
