"""``spanwatch bench clusters``: prompt clusters judged on text nobody here wrote.

Clones under ``~/.cache/spanwatch/datasets`` (or ``$SPANWATCH_DATASETS``):

* ``task-specific-datasets`` (PolyAI, https://github.com/PolyAI-LDN/task-specific-datasets):
  BANKING77, 3,080 real customer questions in 77 intents (``banking_data/test.csv``): the
  background traffic of a support application;
* ``GPTFuzz`` (https://github.com/sherdencooper/GPTFuzz): 77 human-written jailbreak templates
  (``datasets/prompts/GPTFuzzer.csv``, with an ``[INSERT PROMPT HERE]`` slot) and 100 harmful
  questions (``datasets/questions/question_list.csv``): a campaign is one template sent with
  many questions, as a jailbreak tool sends it.

Two measures, through the same :class:`~pipeline.clusters.ClusterModel` the series owner runs:

1. what the clusters of the background are: how many, how many questions share a cluster,
   and how often a shared cluster holds one intent (the fingerprint groups near-identical
   text, not paraphrases: the number says how far that is from intents);
2. campaigns: per template, windows of background questions, then ``campaign_windows``
   windows that each also carry ``per_window`` prompts of the template; a campaign is found
   when a window reports a new cluster holding its prompts. False alarms: new clusters in
   windows with no campaign, per window;
3. a new intent in the users' own words (a held-out BANKING77 intent): what the fingerprint
   does not do (it groups near-identical text, not paraphrases).
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanwatch.devtools.public_series import DEFAULT_ROOT
from spanwatch.pipeline.clusters.prompts import ClusterModel, ClusterSettings, fingerprint

SLOT = "[INSERT PROMPT HERE]"
NS = 10**9


@dataclass(frozen=True)
class Prompt:
    text: str
    label: str  # intent of a background question; "campaign:<template>" for a campaign
    fp: int


def _csv(path: Path, column: str) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [row for row in csv.DictReader(f) if row.get(column)]


def load(root: Path) -> tuple[list[Prompt], list[str], list[str]]:
    """Background prompts (with intents), jailbreak templates, harmful questions."""
    banking = root / "task-specific-datasets" / "banking_data" / "test.csv"
    templates = root / "GPTFuzz" / "datasets" / "prompts" / "GPTFuzzer.csv"
    questions = root / "GPTFuzz" / "datasets" / "questions" / "question_list.csv"
    missing = [str(p) for p in (banking, templates, questions) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            "public sets not found: " + ", ".join(missing) + " (clone "
            "https://github.com/PolyAI-LDN/task-specific-datasets and "
            f"https://github.com/sherdencooper/GPTFuzz under {root})"
        )
    background = [
        Prompt(r["text"], r["category"], fingerprint(r["text"])) for r in _csv(banking, "text")
    ]
    tmpl = [r["text"] for r in _csv(templates, "text") if SLOT in r["text"]]
    qs = [r["text"] for r in _csv(questions, "text")]
    return background, tmpl, qs


def _window(
    model: ClusterModel, w: int, prompts: Sequence[Prompt], cfg: ClusterSettings
) -> tuple[dict[str, Any], dict[int, list[str]]]:
    """Run one window through the model; also return the labels in each cluster."""
    samples = [(w * 60 * NS + i, f"{w:08x}{i:08x}", "", p.fp) for i, p in enumerate(prompts)]
    members: dict[str, int] = {}
    fields = model.update(w * 60 * NS, 60 * NS, samples, cfg, members)
    labels: dict[int, list[str]] = {}
    for (_, span_id, _, _), p in zip(samples, prompts, strict=True):
        labels.setdefault(members[span_id], []).append(p.label)
    return fields, labels


def background_clusters(background: Sequence[Prompt], cfg: ClusterSettings) -> str:
    _, labels = _window(
        ClusterModel(), 0, background, cfg.model_copy(update={"max_clusters": 10**6})
    )
    shared = [v for v in labels.values() if len(v) > 1]
    in_shared = sum(len(v) for v in shared)
    pure = sum(Counter(v).most_common(1)[0][1] for v in shared)
    return (
        f"BANKING77 test ({len(background)} questions, 77 intents) in one window: "
        f"{len(labels)} clusters; {in_shared} questions ({in_shared / len(background):.0%}) "
        f"share a cluster, and {pure / max(in_shared, 1):.0%} of those share it with their "
        "own intent"
    )


def _inject(
    pool: Sequence[Prompt],
    injected: Sequence[Prompt],
    label: str,
    cfg: ClusterSettings,
    background_per_window: int,
    per_window: int,
    warm_windows: int,
    injected_windows: int,
    mix: random.Random | None = None,
) -> tuple[bool, int, int]:
    """Windows of background prompts, then ``injected_windows`` windows that also carry
    ``per_window`` of ``injected`` (shuffled in by ``mix`` when given): whether a window
    reported a new cluster holding ``label``, and the new clusters in background-only windows
    after the warm-up (false ones) with how many such windows there were."""
    model, hit, false, quiet = ClusterModel(), False, 0, 0
    for w in range(warm_windows + injected_windows):
        prompts = list(pool[w * background_per_window : (w + 1) * background_per_window])
        injecting = w >= warm_windows
        if injecting:
            start = (w - warm_windows) * per_window
            prompts += injected[start : start + per_window]
            if mix is not None:
                mix.shuffle(prompts)
        fields, labels = _window(model, w, prompts, cfg)
        new = [int(n["id"][1:]) for n in fields["new"]]
        if injecting:
            hit |= any(label in labels.get(c, []) for c in new)
        elif w > cfg.warmup_windows:
            quiet += 1
            false += len(new)
    return hit, false, quiet


def campaigns(
    background: Sequence[Prompt],
    templates: Sequence[str],
    questions: Sequence[str],
    cfg: ClusterSettings,
    *,
    per_window: int = 5,
    background_per_window: int = 60,
    warm_windows: int = 10,
    campaign_windows: int = 3,
    seed: int = 11,
) -> tuple[int, int, int, int]:
    """(campaigns found, campaigns run, false new clusters, background windows)."""
    rng = random.Random(seed)
    found = false = quiet = 0
    for t, template in enumerate(templates):
        pool = list(background)
        rng.shuffle(pool)
        qs = list(questions)
        rng.shuffle(qs)
        label = f"campaign:{t}"
        injected = [
            Prompt(text, label, fingerprint(text))
            for text in (template.replace(SLOT, q) for q in qs[: campaign_windows * per_window])
        ]
        hit, new_false, new_quiet = _inject(
            pool,
            injected,
            label,
            cfg,
            background_per_window,
            per_window,
            warm_windows,
            campaign_windows,
            mix=rng,
        )
        false += new_false
        quiet += new_quiet
        found += hit
    return found, len(templates), false, quiet


def new_intents(
    background: Sequence[Prompt],
    cfg: ClusterSettings,
    *,
    per_window: int = 5,
    warm_windows: int = 10,
    campaign_windows: int = 3,
    seed: int = 12,
) -> tuple[int, int]:
    """A new kind of request in the users' own words: per BANKING77 intent, the other
    intents as background, then ``per_window`` questions of the held-out intent per window.
    (intents found, intents run)."""
    rng = random.Random(seed)
    intents = sorted({p.label for p in background})
    found = 0
    for intent in intents:
        pool = [p for p in background if p.label != intent]
        new_kind = [p for p in background if p.label == intent]
        rng.shuffle(pool)
        rng.shuffle(new_kind)
        hit, _, _ = _inject(
            pool, new_kind, intent, cfg, 60, per_window, warm_windows, campaign_windows
        )
        found += hit
    return found, len(intents)


def bench_clusters(data: str | None = None) -> int:
    root = Path(data) if data else DEFAULT_ROOT
    try:
        background, templates, questions = load(root)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 2
    cfg = ClusterSettings()
    print(f"settings: max_distance {cfg.max_distance} bits, min_new_size {cfg.min_new_size}")
    print(background_clusters(background, cfg))
    for per_window in (3, 5, 10):
        found, runs, false, quiet = campaigns(
            background, templates, questions, cfg, per_window=per_window
        )
        print(
            f"campaigns of {per_window} prompts per 1m window among 60 BANKING77 questions: "
            f"{found}/{runs} GPTFuzz templates found ({found / runs:.0%}); false new clusters "
            f"{false} in {quiet} background windows ({false / max(quiet, 1):.3f} per window)"
        )
    found, runs = new_intents(background, cfg)
    print(
        f"a new intent in the users' own words (a held-out BANKING77 intent, 5 questions per "
        f"window): {found}/{runs} found ({found / runs:.0%}): the fingerprint groups "
        f"near-identical text, not paraphrases"
    )
    return 0
