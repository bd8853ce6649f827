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


_SUM_BY = re.compile(
    r"^\s*sum\s+by\s*\(([^)]*)\)\s*\(\s*(?:rate|increase)\(\s*([A-Za-z_:][\w:]*)"
    r"\s*(?:\{([^}]*)\})?\s*\[[^\]]+\]\s*\)\s*\)\s*(?:\*\s*[\d.]+)?\s*$"
)
_MATCHER = re.compile(r'\s*([A-Za-z_]\w*)\s*(=~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


def sum_by(expr: str, expositions: list[str]) -> dict[tuple[str, ...], float]:
    """``sum by (labels) (rate(metric{matchers}[range]))`` evaluated over whole counters of
    one or more scrapes (the rate's window is the whole run): grouped totals. Only that form
    is understood; anything else is a ValueError."""
    m = _SUM_BY.match(expr)
    if m is None:
        raise ValueError(f"not a sum by (...) (rate(metric[...])) query: {expr}")
    by = [x.strip() for x in m.group(1).split(",") if x.strip()]
    name, matchers = m.group(2), _MATCHER.findall(m.group(3) or "")
    out: dict[tuple[str, ...], float] = {}
    for text in expositions:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                labels = s.labels
                if s.name != name or not all(
                    _matches(labels.get(k, ""), op, v) for k, op, v in matchers
                ):
                    continue
                key = tuple(s.labels.get(k, "") for k in by)
                out[key] = out.get(key, 0.0) + s.value
    return out


def _matches(value: str, op: str, want: str) -> bool:
    if op == "=":
        return value == want
    if op == "!=":
        return value != want
    return re.fullmatch(want, value) is not None
