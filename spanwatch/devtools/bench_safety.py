"""``spanwatch bench safety``: scanning speed and accuracy of the built-in content checks.

* Speed: MB/s of UTF-8 text per core (CPU time of this process) for each scanner alone and
  for all of them together, on mixed Chinese/English text, with the built-in lexicon plus a
  generated 10,000-term lexicon.
* Accuracy, on public material nobody here wrote (:mod:`spanwatch.devtools.safety_public`):
  per kind, recall on its positives, precision, and the share of benign texts that get a
  finding of that kind, on the dev and the test halves (patterns were written looking at dev
  only).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from spanwatch.devtools.safety_corpus import corpus, lexicon_terms
from spanwatch.pipeline.safety.lexicon import LexiconScanner
from spanwatch.pipeline.safety.registry import Scanner, build_scanner
from spanwatch.pipeline.safety.scan import SafetyEngine
from spanwatch.runtime.progress import bar


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


def bench_safety(texts: int = 2000, terms: int = 10_000, data: str | None = None) -> int:
    vocab = lexicon_terms(terms)
    t0 = time.perf_counter()
    lexicon = LexiconScanner(lexicons=[{"terms": vocab, "category": "bench"}])
    build_s = time.perf_counter() - t0
    samples = corpus(texts, terms=vocab)
    body = [s.text for s in samples]
    size = sum(len(t.encode()) for t in body)
    print(
        f"data: {len(body)} texts, {size / 1e6:.1f} MB UTF-8 (mixed Chinese/English); "
        f"lexicon {lexicon.size:,} terms (built in {build_s * 1000:.0f} ms)"
    )
    scanners = {
        "pii": build_scanner({"type": "pii"}),
        "secrets": build_scanner({"type": "secrets"}),
        "injection": build_scanner({"type": "injection"}),
        "lexicon": lexicon,
    }
    for name, sc in scanners.items():
        print(f"  {name:<10} {_rate([sc], body):8.1f} MB/s per core")
    print(f"  {'all':<10} {_rate(list(scanners.values()), body):8.1f} MB/s per core")
    if not public_accuracy(data):
        print("no public material found: accuracy not measured")
    return 0


KINDS = ("injection", "secret", "pii", "lexicon")


def public_accuracy(root: str | None, print_: Callable[[str], None] = print) -> int:
    """Recall, precision and benign false-positive rate per kind; returns the samples read."""
    from pathlib import Path

    from spanwatch.devtools.safety_public import corpus, lexicon_terms

    base = Path(root) if root else None
    samples, missing = corpus(base)
    if missing:
        print_("public sources not found (clone them, see docs/SAFETY.md): " + ", ".join(missing))
    if not samples:
        return 0
    from spanwatch.devtools.public_series import DEFAULT_ROOT

    terms = lexicon_terms(base or DEFAULT_ROOT)
    engine = SafetyEngine(
        [
            build_scanner({"type": "pii"}),
            build_scanner({"type": "secrets"}),
            build_scanner({"type": "injection"}),
            LexiconScanner(builtin=False, lexicons=[{"terms": terms, "category": "public"}]),
        ]
    )
    print_(
        f"\naccuracy on {len(samples):,} public samples; benign = prompts and answers "
        "labelled benign; near-miss = the secret scanners' own false-positive test cases"
    )
    _table(_count(engine, samples, terms), print_)
    print_(
        "\nthe same samples as instrumentations send them: a gen_ai.input.messages JSON "
        'string written by json.dumps([{"role": "user", "content": text}]) (non-ASCII escaped)'
    )
    _table(_count(engine, samples, terms, wrap=_as_message_list), print_)
    return len(samples)


def _as_message_list(text: str) -> str:
    import json

    return json.dumps([{"role": "user", "content": text}])


def _table(stats: dict[tuple[str, str], list[int]], print_: Callable[[str], None]) -> None:
    print_("| kind | split | positives | recall | precision | benign flagged | near-miss flagged |")
    print_("|---|---|---|---|---|---|---|")
    for kind in KINDS:
        for split in ("dev", "test"):
            tp, pos, fp, neg, nfp, nneg = stats[(kind, split)]
            prec = tp / (tp + fp + nfp) if tp + fp + nfp else float("nan")
            near = f"{nfp / nneg:.1%} ({nfp}/{nneg})" if nneg else "-"
            print_(
                f"| {kind} | {split} | {pos} | {tp / max(pos, 1):.3f} | {prec:.3f} | "
                f"{fp / max(neg, 1):.2%} ({fp}/{neg}) | {near} |"
            )


def _count(
    engine: SafetyEngine,
    samples: list[Any],
    terms: list[str],
    wrap: Callable[[str], str] | None = None,
) -> dict[tuple[str, str], list[int]]:
    """``(kind, split) -> [true positives, positives, benign flagged, benign, near-misses
    flagged, near-misses]``. A benign text that literally contains a lexicon term is not
    benign for the lexicon."""
    stats: dict[tuple[str, str], list[int]] = {
        (k, s): [0] * 6 for k in KINDS for s in ("dev", "test")
    }
    for s in bar(samples, desc="scanning", unit="text"):
        found = {f.kind for f in engine.scan(wrap(s.text) if wrap else s.text)}
        if s.kind in KINDS:
            row = stats[(s.kind, s.split)]
            row[1] += 1
            row[0] += s.kind in found
        if s.kind is None:
            near = s.category.endswith("/false_positive")
            literal = any(t in s.text for t in terms)
            for kind in KINDS:
                if kind == "lexicon" and literal:
                    continue
                row = stats[(kind, s.split)]
                row[5 if near else 3] += 1
                row[4 if near else 2] += kind in found
    return stats
