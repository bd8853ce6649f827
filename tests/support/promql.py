"""Just enough PromQL and exposition-format reading to check that dashboards and alert rules
name metrics a worker really exports."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, label names, strings,
    durations and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values, legends)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group(0)
        rest = text[m.end() :].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function call or an operator
        names.add(word)
    return names


def exported_names(exposition: str) -> set[str]:
    """Every sample name a scrape can hold: the samples present and, for declared families
    without samples yet, the names their type gives (``_total``, or ``_bucket``, ``_sum``
    and ``_count``)."""
    out: set[str] = set()
    for fam in text_string_to_metric_families(exposition):
        out.update(s.name for s in fam.samples)
        out.update(fam.name + suffix for suffix in _SUFFIXES.get(fam.type, ("",)))
    return out
