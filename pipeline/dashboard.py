"""What the live web view shows, kept from the records of spanwatch's output topics.

:class:`Dashboard` reads closed windows, token windows, black holes, findings, anomalies,
alerts and silences (the JSON records of docs/SCHEMAS.md) and keeps a bounded picture: the
last ``points`` windows of each series as chart columns, token and cost totals per model,
service, user and session (summed over the windows of one shape, each window once), and the
most recent events of every other kind. :meth:`Dashboard.snapshot` is what the page draws.
Records may arrive twice (at-least-once): a window is kept once per series and start, an
alert by its fingerprint, a silence by its id.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spanwatch.pipeline.values import METRICS

# chart columns of a series, read off each closed window (pipeline.values names)
COLUMNS = (
    "ttft_p50",
    "ttft_p95",
    "tpot_p50",
    "tpot_p95",
    "latency_p50",
    "latency_p95",
    "queue_p95",
    "request_rate",
    "error_rate",
    "errors",
    "output_tokens_per_s",
    "input_tokens_per_s",
)
ENTITY_KINDS = ("model", "service", "user", "session")


@dataclass
class SeriesView:
    """The charted windows of one series, oldest first, and what its latest window says."""

    labels: dict[str, str]
    starts: list[int] = field(default_factory=list)  # window start, ns
    columns: dict[str, list[float | None]] = field(default_factory=lambda: {c: [] for c in COLUMNS})
    time_share: dict[str, float] = field(default_factory=dict)
    ttft_share: dict[str, float] = field(default_factory=dict)
    exemplars: dict[str, Any] = field(default_factory=dict)

    def add(self, rec: dict[str, Any], keep: int) -> bool:
        """Insert the window in start order (a repeat replaces it); False if older than all
        kept ones while full."""
        start = int(rec["window"]["start_ns"])
        values = {c: METRICS[c].extract(rec) for c in COLUMNS}
        if start in self.starts:
            i = self.starts.index(start)
            for c in COLUMNS:
                self.columns[c][i] = values[c]
        else:
            if len(self.starts) >= keep and start < self.starts[0]:
                return False
            i = sum(1 for s in self.starts if s < start)
            self.starts.insert(i, start)
            for c in COLUMNS:
                self.columns[c].insert(i, values[c])
            if len(self.starts) > keep:
                del self.starts[0]
                for c in COLUMNS:
                    del self.columns[c][0]
        if start == self.starts[-1]:  # the latest window: what the series looks like now
            self.time_share = dict(rec.get("time_share") or {})
            self.ttft_share = dict(rec.get("ttft_share") or {})
            self.exemplars = dict(rec.get("exemplars") or {})
        return True


@dataclass
class EntityTotals:
    """Token and cost totals of one entity over the windows seen (each window once)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: dict[str, float] = field(default_factory=dict)
    unpriced_requests: int = 0
    windows: set[int] = field(default_factory=set)  # window starts already counted

    def add(self, rec: dict[str, Any]) -> None:
        start = int(rec["window"]["start_ns"])
        if start in self.windows:
            return
        self.windows.add(start)
        self.requests += int(rec.get("requests") or 0)
        self.input_tokens += int(rec.get("input_tokens") or 0)
        self.output_tokens += int(rec.get("output_tokens") or 0)
        self.unpriced_requests += int(rec.get("unpriced_requests") or 0)
        for ccy, v in (rec.get("cost") or {}).items():
            self.cost[ccy] = self.cost.get(ccy, 0.0) + float(v)

    def view(self, ident: str) -> dict[str, Any]:
        return {
            "id": ident,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "cost": {k: round(v, 6) for k, v in sorted(self.cost.items())},
            "unpriced_requests": self.unpriced_requests,
        }


@dataclass
class Dashboard:
    """The bounded picture the web view draws (module docs)."""

    window: str | None = None  # window shape charted and summed; None: the first one seen
    points: int = 120  # windows kept per series
    recent: int = 100  # events kept per kind (findings, anomalies, black holes, alerts)
    max_series: int = 500
    max_entities: int = 5000  # per entity kind
    top_n: int = 10
    series: OrderedDict[str, SeriesView] = field(default_factory=OrderedDict)
    entities: dict[str, OrderedDict[str, EntityTotals]] = field(
        default_factory=lambda: {k: OrderedDict() for k in ENTITY_KINDS}
    )
    black_holes: deque[dict[str, Any]] = field(default_factory=deque)
    findings: deque[dict[str, Any]] = field(default_factory=deque)
    finding_counts: dict[str, int] = field(default_factory=dict)  # "kind/severity" -> n
    anomalies: deque[dict[str, Any]] = field(default_factory=deque)
    # (signal, series) -> when its detector's first score is due (still learning)
    learning: OrderedDict[str, int] = field(default_factory=OrderedDict)
    expected: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    alerts: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    alert_changes: deque[dict[str, Any]] = field(default_factory=deque)
    silences: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0  # moves with every record that changed the picture

    def add(self, topic: str, key: str | None, rec: Any) -> None:
        """One record of an output topic: ``topic`` is its kind (``metrics``, ``tokens``,
        ``findings``, ``anomalies``, ``alerts``, ``silences``); anything else is ignored."""
        handlers = {
            "metrics": self._metrics,
            "tokens": self._tokens,
            "findings": self._findings,
            "anomalies": self._anomalies,
            "alerts": self._alerts,
            "silences": self._silences,
        }
        handler = handlers.get(topic)
        if handler is None or not (isinstance(rec, dict) or (rec is None and topic == "silences")):
            return
        if handler(key, rec):  # type: ignore[arg-type]  # None only reaches _silences
            self.version += 1

    def _charted(self, rec: dict[str, Any]) -> bool:
        name = rec.get("window", {}).get("name")
        if self.window is None and isinstance(name, str):
            self.window = name
        return bool(name == self.window)

    def _metrics(self, key: str | None, rec: dict[str, Any]) -> bool:
        if "series" not in rec or not self._charted(rec):
            return False
        sid = key or repr(sorted(rec["series"].items()))
        view = self.series.get(sid)
        if view is None:
            view = self.series[sid] = SeriesView(dict(rec["series"]))
            while len(self.series) > self.max_series:
                self.series.popitem(last=False)
        self.series.move_to_end(sid)
        return view.add(rec, self.points)

    def _tokens(self, key: str | None, rec: dict[str, Any]) -> bool:
        kind = rec.get("type")
        if kind == "black_hole":
            _push(self.black_holes, rec, self.recent)
            return True
        entity = rec.get("entity") or {}
        if kind != "window" or entity.get("kind") not in ENTITY_KINDS or not self._charted(rec):
            return False
        table = self.entities[entity["kind"]]
        totals = table.get(entity["id"])
        if totals is None:
            totals = table[entity["id"]] = EntityTotals()
            while len(table) > self.max_entities:
                table.popitem(last=False)
        table.move_to_end(entity["id"])
        totals.add(rec)
        return True

    def _findings(self, key: str | None, rec: dict[str, Any]) -> bool:
        if rec.get("type") == "evaluation" and not rec.get("flagged"):
            return False
        _push(self.findings, rec, self.recent)
        label = f"{rec.get('kind', '?')}/{rec.get('severity', '?')}"
        self.finding_counts[label] = self.finding_counts.get(label, 0) + 1
        return True

    def _anomalies(self, key: str | None, rec: dict[str, Any]) -> bool:
        ident = f"{rec.get('signal')}|{key or repr(rec.get('labels'))}"
        learning = rec.get("learning")
        if isinstance(learning, dict):
            self.learning[ident] = int(learning.get("ready_at_ns") or 0)
            self.learning.move_to_end(ident)
            while len(self.learning) > self.max_series:
                self.learning.popitem(last=False)
        else:
            self.learning.pop(ident, None)
        self.expected[ident] = {
            k: rec.get(k) for k in ("signal", "unit", "labels", "value", "expected", "score")
        } | {"at_ns": rec.get("window", {}).get("end_ns")}
        self.expected.move_to_end(ident)
        while len(self.expected) > self.max_series:
            self.expected.popitem(last=False)
        if rec.get("type") == "anomaly":
            _push(self.anomalies, rec, self.recent)
        return True

    def _alerts(self, key: str | None, rec: dict[str, Any]) -> bool:
        fp = str(rec.get("fingerprint") or key)
        self.alerts[fp] = rec
        self.alerts.move_to_end(fp)
        while len(self.alerts) > self.max_series:
            self.alerts.popitem(last=False)
        _push(self.alert_changes, rec, self.recent)
        return True

    def _silences(self, key: str | None, rec: dict[str, Any] | None) -> bool:
        if rec is None:
            return self.silences.pop(str(key), None) is not None
        self.silences[str(rec.get("id") or key)] = rec
        return True

    def snapshot(self) -> dict[str, Any]:
        """Everything the page draws, JSON-ready, newest events first."""
        return {
            "version": self.version,
            "window": self.window,
            "series": [
                {
                    "id": sid,
                    "labels": v.labels,
                    "t": [s / 1e9 for s in v.starts],
                    **v.columns,
                    "time_share": v.time_share,
                    "ttft_share": v.ttft_share,
                    "exemplars": v.exemplars,
                }
                for sid, v in self.series.items()
            ],
            "tokens": {kind: self._top(kind) for kind in ENTITY_KINDS},
            "black_holes": list(reversed(self.black_holes)),
            "findings": list(reversed(self.findings)),
            "finding_counts": dict(sorted(self.finding_counts.items())),
            "anomalies": list(reversed(self.anomalies)),
            # detectors still in their grace period: why no anomaly can show yet, and until when
            "anomaly_learning": {
                "series": len(self.learning),
                "ready_at_ns": min(self.learning.values(), default=None),
            },
            "expected": list(reversed(self.expected.values())),
            "alerts": sorted(self.alerts.values(), key=_alert_order),
            "alert_changes": list(reversed(self.alert_changes)),
            "silences": sorted(self.silences.values(), key=lambda s: str(s.get("id"))),
        }

    def _top(self, kind: str) -> list[dict[str, Any]]:
        table: Mapping[str, EntityTotals] = self.entities[kind]
        ranked = sorted(
            table.items(), key=lambda kv: (-(kv[1].input_tokens + kv[1].output_tokens), kv[0])
        )
        return [t.view(ident) for ident, t in ranked[: self.top_n]]


def _push(events: deque[dict[str, Any]], rec: dict[str, Any], keep: int) -> None:
    events.append(rec)
    while len(events) > keep:
        events.popleft()


_STATUS_ORDER = {"firing": 0, "pending": 1, "resolved": 2, "inactive": 3}


def _alert_order(rec: dict[str, Any]) -> tuple[int, float]:
    return (_STATUS_ORDER.get(str(rec.get("status")), 4), -float(rec.get("at") or 0))
