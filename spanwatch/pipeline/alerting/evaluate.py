"""Stage 1 of alerting: records of the output topics -> rule samples.

Stateless and cheap, so it runs wherever the records are consumed (any worker). A
:class:`Sample` says, for one rule and one alert identity (labels), whether one member (a
series, an entity, a trace) breaches now, with the value and the context an annotation needs.
Samples go to the alert manager (stage 2), which owns all alert state.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from . import watched as sig
from .loader import RuleSet
from .matchers import all_match
from .rules import SEVERITIES, Rule


def fingerprint(labels: dict[str, str]) -> str:
    raw = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


@dataclass
class Sample:
    rule: str
    labels: dict[str, str]  # alertname + identity labels + the rule's labels
    member: str  # which series / entity / trace inside the alert
    value: float | None
    breach: bool
    event_ns: int
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "sample", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        return cls(
            d["rule"],
            d["labels"],
            d["member"],
            d["value"],
            d["breach"],
            d["event_ns"],
            d.get("context", {}),
        )


def _identity(rule: Rule, labels: dict[str, str]) -> dict[str, str]:
    ident = labels if rule.by is None else {k: labels.get(k, "") for k in rule.by}
    return {**{k: str(v) for k, v in ident.items()}, **rule.labels, "alertname": rule.name}


class RuleEvaluator:
    def __init__(self, ruleset: RuleSet) -> None:
        self.rules = ruleset.rules
        self.by_kind: dict[str, list[Rule]] = {}
        for r in self.rules:
            self.by_kind.setdefault(r.kind, []).append(r)

    def samples(self, topic_kind: str, rec: dict[str, Any], key: str = "") -> list[Sample]:
        """``topic_kind``: ``metrics``, ``tokens``, ``findings`` or ``anomalies``."""
        if topic_kind == "metrics" and "series" in rec:
            return self._windows(rec, rec["series"], None, key)
        if topic_kind == "tokens":
            if rec.get("type") == "window":
                ent = rec["entity"]
                return self._windows(
                    rec, {"entity_kind": ent["kind"], "entity": ent["id"]}, ent["kind"], key
                )
            if rec.get("type") == "black_hole":
                return self._black_hole(rec)
        if topic_kind == "findings":
            return self._finding(rec)
        if topic_kind == "anomalies" and rec.get("type") == "score":
            return self._anomaly(rec)
        return []

    def _windows(
        self, rec: dict[str, Any], labels: dict[str, str], entity: str | None, key: str
    ) -> list[Sample]:
        out = []
        window = rec["window"]
        end_ns = window["end_ns"]
        table = sig.TOKENS if entity else sig.METRICS
        member = key or "|".join(f"{k}={v}" for k, v in sorted(labels.items()))
        for rule in self.by_kind.get("threshold", []) + self.by_kind.get("absent", []):
            if rule.entity != entity or (rule.window and rule.window != window["name"]):
                continue
            if not all_match(rule.matchers, labels):
                continue
            if rule.kind == "absent":
                out.append(
                    Sample(
                        rule.name,
                        _identity(rule, labels),
                        member,
                        None,
                        False,
                        end_ns,
                        {"window": window["name"]},
                    )
                )
                continue
            assert rule.signal is not None
            watched = table[rule.signal]
            unit = watched.unit
            value = watched.extract(rec)
            if value is None:
                continue
            out.append(
                Sample(
                    rule.name,
                    _identity(rule, labels),
                    member,
                    value,
                    rule.compare(value),
                    end_ns,
                    {
                        "signal": rule.signal,
                        "unit": unit,
                        "threshold": rule.threshold,
                        "window": window["name"],
                        "trace_id": sig.example_trace(rec, rule.signal),
                        "top": sig.top_contributors(rec),
                    },
                )
            )
        return out

    def _black_hole(self, rec: dict[str, Any]) -> list[Sample]:
        ent, budget = rec["entity"], rec.get("budget", "")
        labels = {"entity_kind": ent["kind"], "budget": budget}
        out = []
        for rule in self.by_kind.get("black_hole", []):
            if ent["kind"] not in rule.entity_kinds or (
                rule.budgets and budget not in rule.budgets
            ):
                continue
            if not all_match(rule.matchers, labels):
                continue
            ev = rec.get("evidence") or {}
            top = [
                {"name": c.get("model") or "?", "value": c.get("tokens")}
                for c in (ev.get("top_calls") or [])[:3]
            ]
            trace = ent["id"] if ent["kind"] == "trace" else None
            out.append(
                Sample(
                    rule.name,
                    _identity(rule, labels),
                    f"{ent['kind']}:{ent['id']}",
                    rec.get("value"),
                    True,
                    rec.get("at_ns", 0),
                    {
                        "signal": budget,
                        "threshold": rec.get("limit"),
                        "trace_id": trace,
                        "top": top,
                        "unit": "",
                    },
                )
            )
        return out

    def _finding(self, rec: dict[str, Any]) -> list[Sample]:
        if rec.get("type") == "evaluation" and not rec.get("flagged"):
            return []
        labels = {
            "service": rec.get("service", ""),
            "model": rec.get("model", ""),
            "kind": rec.get("kind", ""),
            "category": rec.get("category", ""),
            "role": rec.get("role", ""),
            "finding_severity": rec.get("severity", ""),
        }
        sev = SEVERITIES.index(rec["severity"]) if rec.get("severity") in SEVERITIES else -1
        out = []
        for rule in self.by_kind.get("finding", []):
            if (
                (rule.kinds and labels["kind"] not in rule.kinds)
                or (rule.categories and labels["category"] not in rule.categories)
                or (rule.roles and labels["role"] not in rule.roles)
                or (sev < SEVERITIES.index(rule.min_severity))
            ):
                continue
            if not all_match(rule.matchers, labels):
                continue
            out.append(
                Sample(
                    rule.name,
                    _identity(rule, labels),
                    rec.get("trace_id", ""),
                    rec.get("score"),
                    True,
                    rec.get("time_ns", 0),
                    {
                        "signal": f"{labels['kind']}/{labels['category']}",
                        "trace_id": rec.get("trace_id") or None,
                        "excerpt": rec.get("excerpt", ""),
                        "unit": "",
                    },
                )
            )
        return out

    def _anomaly(self, rec: dict[str, Any]) -> list[Sample]:
        labels = {k: str(v) for k, v in rec.get("labels", {}).items()}
        out = []
        for rule in self.by_kind.get("anomaly", []):
            if rule.signal != rec.get("signal") or (
                rule.window and rule.window != rec["window"]["name"]
            ):
                continue
            if not all_match(rule.matchers, labels):
                continue
            breach = (
                rec["score"] >= rule.min_score
                if rule.min_score is not None
                else bool(rec.get("anomalous"))
            )
            out.append(
                Sample(
                    rule.name,
                    _identity(rule, labels),
                    "|".join(f"{k}={v}" for k, v in sorted(labels.items())),
                    rec.get("value"),
                    breach,
                    rec["window"]["end_ns"],
                    {
                        "signal": rec["signal"],
                        "unit": rec.get("unit", ""),
                        "expected": rec.get("expected"),
                        "score": rec["score"],
                        "window": rec["window"]["name"],
                    },
                )
            )
        return out
