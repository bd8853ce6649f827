"""Alert rules: the typed model and the validation of rule groups (``groups:`` files).

Every problem is reported (not only the first) as ``file:line:column: message``, in the spirit
of Prometheus' ``rulefmt``. Kinds:

* ``threshold``: a windowed signal compared with a number (``signal``, ``window``, ``op``,
  ``threshold``; ``entity:`` for token windows);
* ``anomaly``: a signal's anomaly score (``signal``, optional ``min_score``);
* ``finding``: content-safety findings (``kinds``, ``categories``, ``min_severity``, ``roles``);
* ``black_hole``: token budgets crossed by a trace or session (``budgets``, ``entity_kinds``);
* ``absent``: a series that stopped reporting (``signal`` optional, ``for`` required).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from ..anomaly.defaults import SIGNALS as ANOMALY_SIGNALS
from ..common.durations import parse_duration_s
from ..common.yamlpos import Located, Path_
from ..windows.golden import DEFAULT_DIMENSIONS
from . import templates
from . import watched as sig
from .matchers import Matcher, parse_matchers

KINDS = ("threshold", "anomaly", "finding", "black_hole", "absent")
OPS = (">", ">=", "<", "<=", "==", "!=")

SEVERITIES = ("low", "medium", "high", "critical")

FINDING_KINDS = ("pii", "secret", "injection", "unicode", "lexicon", "judge")
BUDGETS = (
    "max_llm_calls",
    "max_tool_calls",
    "max_tokens",
    "max_tokens_per_minute",
    "max_agent_depth",
    "max_repeated_tool_calls",
    "max_same_tool_calls",
)
ENTITY_KINDS = ("model", "service", "user", "session")
COMMON = {"alert", "kind", "for", "keep_firing_for", "labels", "annotations", "matchers", "by"}
KEYS = {
    "threshold": COMMON | {"signal", "window", "entity", "op", "threshold"},
    "anomaly": COMMON | {"signal", "window", "min_score"},
    "finding": COMMON | {"kinds", "categories", "min_severity", "roles"},
    "black_hole": COMMON | {"budgets", "entity_kinds"},
    "absent": COMMON | {"signal", "window", "entity"},
}
EVENT_KINDS = ("finding", "black_hole")  # an event fires at once, resolves after keep_firing_for
DEFAULT_BY = {
    "finding": ("service", "model", "kind", "category"),
    "black_hole": ("entity_kind", "budget"),
}


def compare(value: float, op: str, threshold: float) -> bool:
    """Whether ``value op threshold`` holds (``op`` one of :data:`OPS`)."""
    return {
        ">": value > threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        "<=": value <= threshold,
        "==": value == threshold,
        "!=": value != threshold,
    }[op]


@dataclass(frozen=True)
class Rule:
    name: str
    group: str
    kind: str
    source: str  # file:line:col of the rule, for messages
    signal: str | None = None
    window: str | None = None
    entity: str | None = None
    matchers: tuple[Matcher, ...] = ()
    by: tuple[str, ...] | None = None  # identity labels; None: every label of the series
    op: str = ">"
    threshold: float = 0.0
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    kinds: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_severity: str = "low"
    roles: tuple[str, ...] = ()
    min_score: float | None = None
    budgets: tuple[str, ...] = ()
    entity_kinds: tuple[str, ...] = ("trace", "session")

    def compare(self, value: float) -> bool:
        return compare(value, self.op, self.threshold)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


class Problems:
    """Collects ``file:line:col: message`` lines; ``dimensions`` are the golden-signal
    series' labels of the deployment (``metrics.dimensions``), for label names in rules."""

    def __init__(self, dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []
        self.dimensions = dimensions

    def add(self, doc: Located, path: Path_, message: str) -> None:
        self.items.append(f"{doc.where(path)}: {message}")

    def str_list(self, doc: Located, path: Path_, value: Any, what: str) -> tuple[str, ...] | None:
        """The strings of the list at ``path``; each item that is not a string is reported at
        its own position (block or flow style) and left out. ``None`` when it is no list."""
        if not isinstance(value, list):
            self.add(doc, path, f"'{path[-1]}' must be a list of {what}")
            return None
        for i, x in enumerate(value):
            if not isinstance(x, str):
                self.add(
                    doc,
                    (*path, i),
                    f"item {i + 1} of '{path[-1]}' must be a string ({what}), not {yaml_type(x)}",
                )
        return tuple(x for x in value if isinstance(x, str))

    def matchers(self, doc: Located, path: Path_, value: Any) -> tuple[Matcher, ...]:
        """Label matchers at ``path`` (a list of strings or a ``{label: value}`` mapping);
        a bad matcher is reported at its own list item."""
        if isinstance(value, dict):
            return parse_matchers(value)
        if not isinstance(value, list):
            self.add(
                doc, path, f"'{path[-1]}' must be a list of 'name=\"value\"' strings or a mapping"
            )
            return ()
        out = []
        for i, text in enumerate(value):
            try:
                if not isinstance(text, str):
                    raise ValueError(
                        f'a matcher is a string like name="value", not {yaml_type(text)}'
                    )
                out.append(Matcher.parse(text))
            except ValueError as exc:
                self.add(doc, (*path, i), str(exc))
        return tuple(out)


def yaml_type(v: Any) -> str:
    """What a YAML author wrote, in YAML's words."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def _suggest(word: str, options: set[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_groups(doc: Located, problems: Problems, seen: dict[str, str]) -> list[Rule]:
    """Rules of one ``groups:`` document; ``seen`` maps alert names to where they were defined
    (duplicates across files are errors too)."""
    data = doc.data
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        problems.add(doc, ("groups",), "'groups' must be a list of rule groups")
        return []
    rules: list[Rule] = []
    group_names: set[str] = set()
    for gi, group in enumerate(groups):
        gp: Path_ = ("groups", gi)
        if not isinstance(group, dict):
            problems.add(doc, gp, "a group must be a mapping with 'name' and 'rules'")
            continue
        for key in sorted(set(group) - {"name", "rules"}, key=str):
            problems.add(
                doc,
                (*gp, key, "__key__"),
                f"unknown group key {key!r}{_suggest(str(key), {'name', 'rules'})}",
            )
        gname = group.get("name")
        if not isinstance(gname, str) or not gname:
            problems.add(doc, (*gp, "name"), "group 'name' is required")
            gname = f"#{gi}"
        elif gname in group_names:
            problems.add(doc, (*gp, "name"), f"duplicate group name {gname!r}")
        group_names.add(gname)
        items = group.get("rules")
        if not isinstance(items, list) or not items:
            problems.add(doc, (*gp, "rules"), f"group {gname!r} needs a non-empty 'rules' list")
            continue
        for ri, item in enumerate(items):
            rule = _parse_rule(doc, (*gp, "rules", ri), item, gname, problems, seen)
            if rule is not None:
                rules.append(rule)
    return rules


def _parse_rule(
    doc: Located, rp: Path_, item: Any, group: str, problems: Problems, seen: dict[str, str]
) -> Rule | None:
    if not isinstance(item, dict):
        problems.add(doc, rp, "a rule must be a mapping")
        return None
    before = len(problems.items)
    name = item.get("alert")
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        problems.add(doc, (*rp, "alert"), "'alert' is required: a name of letters, digits, _")
        name = "?"
    elif name in seen:
        problems.add(doc, (*rp, "alert"), f"duplicate rule name {name!r} (first at {seen[name]})")
    else:
        seen[name] = doc.where(rp)
    kind = item.get("kind", "threshold")
    if kind not in KINDS:
        problems.add(
            doc,
            (*rp, "kind"),
            f"unknown kind {kind!r}; one of {', '.join(KINDS)}" + _suggest(str(kind), KINDS),
        )
        return None
    for key in sorted(set(item) - KEYS[kind], key=str):
        problems.add(
            doc,
            (*rp, key, "__key__"),
            f"unknown key {key!r} for a {kind} rule{_suggest(str(key), KEYS[kind])}",
        )
    kw: dict[str, Any] = {}
    _common(doc, rp, item, kind, problems, kw)
    {
        "threshold": _threshold,
        "anomaly": _anomaly,
        "finding": _finding,
        "black_hole": _black_hole,
        "absent": _absent,
    }[kind](doc, rp, item, problems, kw)
    _check_labels(doc, rp, item, kind, kw, problems)
    if len(problems.items) > before:
        return None
    return Rule(name=name, group=group, kind=kind, source=doc.where(rp), **kw)


# labels of the side series that golden-signal rules also read (engine gauges, prompt
# clusters, judge labels: pipeline.windows.merge.SIDE_SERIES)
SIDE_LABELS = ("layer", "service", "model", "evaluation")


def carried_labels(kind: str, entity: str | None, dimensions: tuple[str, ...]) -> set[str]:
    """The label names the samples of a rule of ``kind`` can carry."""
    windows = {*dimensions, *SIDE_LABELS}
    if kind in ("threshold", "absent"):
        return {"entity_kind", "entity"} if entity else windows
    if kind == "anomaly":  # scores of golden-signal windows and of token entities
        return windows | {"kind", "id"}
    if kind == "finding":
        return {"service", "model", "kind", "category", "role", "finding_severity"}
    return {"entity_kind", "budget"}  # black_hole


def _check_labels(
    doc: Located, rp: Path_, item: dict[str, Any], kind: str, kw: dict[str, Any], problems: Problems
) -> None:
    """``by`` and matchers name only labels the rule's series carry: ``by: [service,
    modle]`` grouped every alert under modle="" and passed ``rules check``."""
    known = carried_labels(kind, kw.get("entity"), problems.dimensions)

    def report(path: Path_, name: str) -> None:
        problems.add(
            doc,
            path,
            f"no {kind} series carries label {name!r}{_suggest(name, known)}; "
            f"its labels: {', '.join(sorted(known))}",
        )

    for i, name in enumerate(kw.get("by") or ()):
        if name not in known:
            report((*rp, "by", i), name)
    by_key = isinstance(item.get("matchers"), dict)
    for i, m in enumerate(kw.get("matchers", ())):
        if m.name not in known:
            report((*rp, "matchers", m.name if by_key else i), m.name)


def _duration(doc: Located, path: Path_, v: Any, problems: Problems) -> float:
    try:
        return parse_duration_s(v)
    except ValueError as exc:
        problems.add(doc, path, str(exc))
        return 0.0


def _common(
    doc: Located, rp: Path_, item: dict[str, Any], kind: str, problems: Problems, kw: dict[str, Any]
) -> None:
    if "for" in item:
        kw["for_s"] = _duration(doc, (*rp, "for"), item["for"], problems)
    default_keep = "5m" if kind in EVENT_KINDS else 0
    kw["keep_firing_for_s"] = _duration(
        doc, (*rp, "keep_firing_for"), item.get("keep_firing_for", default_keep), problems
    )
    for section in ("labels", "annotations"):
        v = item.get(section, {})
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            problems.add(doc, (*rp, section), f"'{section}' must map names to strings")
            continue
        kw[section] = {str(k): x for k, x in v.items()}
    for k, text in kw.get("labels", {}).items():
        if "{{" in text or "{%" in text:
            problems.add(
                doc,
                (*rp, "labels", k),
                f"label {k!r} is a template: labels identify "
                "an alert and must not carry values; put them in annotations",
            )
    severity = kw.get("labels", {}).get("severity")
    if (
        severity is not None
        and "{" not in severity
        and severity not in ("info", "warning", "critical", *SEVERITIES)
    ):
        problems.add(
            doc,
            (*rp, "labels", "severity"),
            "severity label should be one of info, warning, critical (or low, medium, high)",
        )
    for k, text in kw.get("annotations", {}).items():
        err = templates.check(text)
        if err:
            problems.add(doc, (*rp, "annotations", k), f"annotation {k!r}: template syntax: {err}")
    if "matchers" in item:
        kw["matchers"] = problems.matchers(doc, (*rp, "matchers"), item["matchers"])
    if "by" in item:
        by = problems.str_list(doc, (*rp, "by"), item["by"], "label names")
        if by is not None:
            kw["by"] = by
    elif kind in DEFAULT_BY:
        kw["by"] = DEFAULT_BY[kind]


def _signal(
    doc: Located,
    rp: Path_,
    item: dict[str, Any],
    problems: Problems,
    kw: dict[str, Any],
    table: dict[str, Any],
    required: bool = True,
) -> None:
    s = item.get("signal")
    if s is None and not required:
        return
    if s not in table:
        where = (
            "token windows (entity: ...)"
            if table is sig.TOKENS
            else ("anomaly scores" if table is ANOMALY_SIGNALS else "golden-signal windows")
        )
        hint = _suggest(str(s), set(table))
        if table is sig.METRICS and s in sig.TOKENS:
            hint = " (it is a token-window signal: add 'entity: model|service|user|session')"
        elif table is sig.TOKENS and s in sig.METRICS:
            hint = " (it is a golden-signal window signal: remove 'entity')"
        problems.add(doc, (*rp, "signal"), f"unknown signal {s!r} for {where}{hint}")
        return
    kw["signal"] = s


def _window(
    doc: Located, rp: Path_, item: dict[str, Any], problems: Problems, kw: dict[str, Any]
) -> None:
    if "window" in item:
        w = item["window"]
        try:
            parse_duration_s(str(w).split("/")[0])
            kw["window"] = str(w)
        except ValueError as exc:
            problems.add(doc, (*rp, "window"), str(exc))


def _entity(
    doc: Located, rp: Path_, item: dict[str, Any], problems: Problems, kw: dict[str, Any]
) -> dict[str, Any]:
    entity = item.get("entity")
    if entity is None:
        return sig.METRICS
    if entity not in ENTITY_KINDS:
        problems.add(doc, (*rp, "entity"), f"entity must be one of {', '.join(ENTITY_KINDS)}")
        return sig.TOKENS
    kw["entity"] = entity
    return sig.TOKENS


def _threshold(
    doc: Located, rp: Path_, item: dict[str, Any], problems: Problems, kw: dict[str, Any]
) -> None:
    _signal(doc, rp, item, problems, kw, _entity(doc, rp, item, problems, kw))
    _window(doc, rp, item, problems, kw)
    op = item.get("op", ">")
    if op not in OPS:
        problems.add(doc, (*rp, "op"), f"op must be one of {' '.join(OPS)}")
    kw["op"] = op
    t = item.get("threshold")
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        problems.add(doc, (*rp, "threshold"), "'threshold' must be a number")
    else:
        kw["threshold"] = float(t)


def _anomaly(
    doc: Located, rp: Path_, item: dict[str, Any], problems: Problems, kw: dict[str, Any]
) -> None:
    _signal(doc, rp, item, problems, kw, ANOMALY_SIGNALS)
    _window(doc, rp, item, problems, kw)
    if "min_score" in item:
        v = item["min_score"]
        if not isinstance(v, (int, float)) or not 0 < v <= 1:
            problems.add(doc, (*rp, "min_score"), "'min_score' must be a number in (0, 1]")
        else:
            kw["min_score"] = float(v)


def _choices(
    doc: Located,
    path: Path_,
    v: Any,
    allowed: tuple[str, ...] | None,
    problems: Problems,
    what: str,
) -> tuple[str, ...]:
    items = problems.str_list(doc, path, v, what)
    if items is None:
        return ()
    if allowed is not None:
        for i, x in enumerate(v):  # positions of the list as written
            if isinstance(x, str) and x not in allowed:
                problems.add(
                    doc,
                    (*path, i),
                    f"unknown {what[:-1]} {x!r}; one of {', '.join(allowed)}{_suggest(x, allowed)}",
                )
    return items


def _finding(
    doc: Located, rp: Path_, item: dict[str, Any], problems: Problems, kw: dict[str, Any]
) -> None:
    if "kinds" in item:
        kw["kinds"] = _choices(
            doc, (*rp, "kinds"), item["kinds"], FINDING_KINDS, problems, "finding kinds"
        )
    if "categories" in item:
        kw["categories"] = _choices(
            doc, (*rp, "categories"), item["categories"], None, problems, "categories"
        )
    if "roles" in item:
        kw["roles"] = _choices(
            doc,
            (*rp, "roles"),
            item["roles"],
            ("input", "output", "system", "tool"),
            problems,
            "roles",
        )
    sev = item.get("min_severity", "low")
    if sev not in SEVERITIES:
        problems.add(
            doc,
            (*rp, "min_severity"),
            f"min_severity must be one of {', '.join(SEVERITIES)}{_suggest(str(sev), SEVERITIES)}",
        )
    kw["min_severity"] = sev


def _black_hole(
    doc: Located, rp: Path_, item: dict[str, Any], problems: Problems, kw: dict[str, Any]
) -> None:
    if "budgets" in item:
        kw["budgets"] = _choices(
            doc, (*rp, "budgets"), item["budgets"], BUDGETS, problems, "budgets"
        )
    if "entity_kinds" in item:
        kw["entity_kinds"] = _choices(
            doc,
            (*rp, "entity_kinds"),
            item["entity_kinds"],
            ("trace", "session"),
            problems,
            "entity kinds",
        )


def _absent(
    doc: Located, rp: Path_, item: dict[str, Any], problems: Problems, kw: dict[str, Any]
) -> None:
    _signal(doc, rp, item, problems, kw, _entity(doc, rp, item, problems, kw), required=False)
    _window(doc, rp, item, problems, kw)
    if "for" not in item:
        problems.add(doc, rp, "an absent rule needs 'for': how long without data is absence")
