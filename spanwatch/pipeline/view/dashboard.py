"""What the live web view shows, kept from the records of spanwatch's output topics.

:class:`Dashboard` reads closed windows, token windows, black holes, findings, anomalies,
alerts and silences (the JSON records of docs/SCHEMAS.md) and keeps a bounded picture: the
last ``points`` windows of each series as chart columns, token and cost totals per model,
service, user and session (summed over the windows of one shape, each window once), and the
most recent events of every other kind. :meth:`Dashboard.snapshot` is what the page draws
first; :meth:`Dashboard.delta` what changed since a version it has (windows set since then,
sections that changed, what the caps removed), merged by :func:`apply_delta` (and by the
page's own copy of it): with 1,000 series a tab receives kilobytes a second, not megabytes.
A window more than ``points`` windows older than the newest one is not charted.
Records may arrive twice (at-least-once): a window is kept once per series and start, an
alert by its fingerprint, a silence by its id.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..tokens.burn import TOP_N
from ..windows.values import METRICS

# chart columns of a series, read off each closed window (pipeline.windows.values names)
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
    stamps: list[int] = field(default_factory=list)  # per window: the version that set it
    latest_stamp: int = 0  # the version that set time_share, ttft_share and exemplars
    born: int = 0  # the version that created the series
    changed: int = 0  # the newest of all of the above

    def add(self, rec: dict[str, Any], keep: int, version: int = 0) -> bool:
        """Insert the window in start order (a repeat replaces it); False if older than all
        kept ones while full. ``version``: the dashboard version this change makes."""
        start = int(rec["window"]["start_ns"])
        values = {c: _shown(METRICS[c].extract(rec)) for c in COLUMNS}
        if start in self.starts:
            i = self.starts.index(start)
            for c in COLUMNS:
                self.columns[c][i] = values[c]
            self.stamps[i] = version
        else:
            if len(self.starts) >= keep and start < self.starts[0]:
                return False
            i = bisect.bisect_left(self.starts, start)
            self.starts.insert(i, start)
            self.stamps.insert(i, version)
            for c in COLUMNS:
                self.columns[c].insert(i, values[c])
            if len(self.starts) > keep:
                del self.starts[0]
                del self.stamps[0]
                for c in COLUMNS:
                    del self.columns[c][0]
        if start == self.starts[-1]:  # the latest window: what the series looks like now
            self.time_share = dict(rec.get("time_share") or {})
            self.ttft_share = dict(rec.get("ttft_share") or {})
            self.exemplars = dict(rec.get("exemplars") or {})
            self.latest_stamp = version
        self.changed = max(self.changed, version, self.born)
        return True

    def view(self, sid: str, since: int = -1) -> dict[str, Any] | None:
        """The series as the page draws it; with ``since``, only the windows set after that
        version (None: nothing changed), labels only if the series is new since."""
        picked: Sequence[int]
        if since < 0 or self.born > since:
            picked = range(len(self.starts))
            out: dict[str, Any] = {"id": sid, "labels": self.labels}
        else:
            picked = [i for i, st in enumerate(self.stamps) if st > since]
            if not picked and self.latest_stamp <= since:
                return None
            out = {"id": sid}
        out["t"] = [self.starts[i] / 1e9 for i in picked]
        for c in COLUMNS:
            col = self.columns[c]
            out[c] = [col[i] for i in picked]
        if since < 0 or self.latest_stamp > since:
            out |= {
                "time_share": self.time_share,
                "ttft_share": self.ttft_share,
                "exemplars": self.exemplars,
            }
        return out


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
    max_series: int = 1000
    max_expected: int = 4000  # latest score per (signal, series)
    max_entities: int = 5000  # per entity kind
    top_n: int = TOP_N
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

    # what was removed (series and expected ranges pushed out by the caps), for deltas:
    # (version, "series" | "expected", id); a client older than gone_floor gets a full snapshot
    gone: deque[tuple[int, str, str]] = field(default_factory=deque)
    gone_floor: int = 0
    max_gone: int = 10_000
    stamps: dict[str, int] = field(default_factory=dict)  # section -> version of its change
    expected_stamps: dict[str, int] = field(default_factory=dict)
    newest_start_ns: int = 0  # the newest charted window seen: the charts' horizon ends here
    epoch: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # this picture's id
    _next: int = 1  # the version the record being added makes

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
        self._next = self.version + 1
        if handler(key, rec):  # type: ignore[arg-type]  # None only reaches _silences
            self.version = self._next

    def _touch(self, *sections: str) -> bool:
        for name in sections:
            self.stamps[name] = self._next
        return True

    def _forget(self, kind: str, ident: str) -> None:
        self.gone.append((self._next, kind, ident))
        while len(self.gone) > self.max_gone:
            self.gone_floor = self.gone.popleft()[0]

    def _charted(self, rec: dict[str, Any]) -> bool:
        name = rec.get("window", {}).get("name")
        if self.window is None and isinstance(name, str):
            self.window = name
            self._touch("window")
        return bool(name == self.window)

    def _metrics(self, key: str | None, rec: dict[str, Any]) -> bool:
        if "series" not in rec or not self._charted(rec):
            return False
        win = rec["window"]
        start = int(win["start_ns"])
        width = max(int(win.get("end_ns") or 0) - start, 1)
        if start < self.newest_start_ns - self.points * width:
            return False  # beyond what the charts span: one late window would stretch them
        self.newest_start_ns = max(self.newest_start_ns, start)
        sid = key or repr(sorted(rec["series"].items()))
        view = self.series.get(sid)
        if view is None:
            view = self.series[sid] = SeriesView(dict(rec["series"]), born=self._next)
            while len(self.series) > self.max_series:
                self._forget("series", self.series.popitem(last=False)[0])
        self.series.move_to_end(sid)
        return view.add(rec, self.points, self._next)

    def _tokens(self, key: str | None, rec: dict[str, Any]) -> bool:
        kind = rec.get("type")
        if kind == "black_hole":
            _push(self.black_holes, rec, self.recent)
            return self._touch("black_holes")
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
        return self._touch("tokens")

    def _findings(self, key: str | None, rec: dict[str, Any]) -> bool:
        if rec.get("type") == "evaluation" and not rec.get("flagged"):
            return False
        _push(self.findings, rec, self.recent)
        label = f"{rec.get('kind', '?')}/{rec.get('severity', '?')}"
        self.finding_counts[label] = self.finding_counts.get(label, 0) + 1
        return self._touch("findings", "finding_counts")

    def _anomalies(self, key: str | None, rec: dict[str, Any]) -> bool:
        ident = f"{rec.get('signal')}|{key or repr(rec.get('labels'))}"
        learning = rec.get("learning")
        if isinstance(learning, dict):
            self.learning[ident] = int(learning.get("ready_at_ns") or 0)
            self.learning.move_to_end(ident)
            while len(self.learning) > self.max_series:
                self.learning.popitem(last=False)
            self._touch("anomaly_learning")
        elif self.learning.pop(ident, None) is not None:
            self._touch("anomaly_learning")
        expected = rec.get("expected")
        self.expected[ident] = {
            "id": hashlib.blake2b(ident.encode(), digest_size=8).hexdigest(),
            "signal": rec.get("signal"),
            "unit": rec.get("unit"),
            "labels": rec.get("labels"),
            "value": _shown(rec.get("value")),
            "expected": {k: _shown(v) for k, v in expected.items()}
            if isinstance(expected, dict)
            else expected,
            "score": _shown(rec.get("score")),
            "at_ns": rec.get("window", {}).get("end_ns"),
        }
        self.expected.move_to_end(ident)
        self.expected_stamps[ident] = self._next
        while len(self.expected) > self.max_expected:
            old, entry = self.expected.popitem(last=False)
            del self.expected_stamps[old]
            self._forget("expected", entry["id"])
        if rec.get("type") == "anomaly":
            _push(self.anomalies, rec, self.recent)
            self._touch("anomalies")
        return True

    def _alerts(self, key: str | None, rec: dict[str, Any]) -> bool:
        fp = str(rec.get("fingerprint") or key)
        self.alerts[fp] = rec
        self.alerts.move_to_end(fp)
        while len(self.alerts) > self.max_series:
            self.alerts.popitem(last=False)
        _push(self.alert_changes, rec, self.recent)
        return self._touch("alerts", "alert_changes")

    def _silences(self, key: str | None, rec: dict[str, Any] | None) -> bool:
        if rec is None:
            if self.silences.pop(str(key), None) is None:
                return False
            return self._touch("silences")
        self.silences[str(rec.get("id") or key)] = rec
        return self._touch("silences")

    def section(self, name: str) -> Any:
        """One of :data:`SECTIONS` as the page draws it (newest events first)."""
        if name == "window":
            return self.window
        if name == "tokens":
            return {kind: self._top(kind) for kind in ENTITY_KINDS}
        if name in ("black_holes", "findings", "anomalies", "alert_changes"):
            return list(reversed(getattr(self, name)))
        if name == "finding_counts":
            return dict(sorted(self.finding_counts.items()))
        if name == "anomaly_learning":  # detectors still learning: why no anomaly shows yet
            return {
                "series": len(self.learning),
                "ready_at_ns": min(self.learning.values(), default=None),
            }
        if name == "alerts":
            return sorted(self.alerts.values(), key=_alert_order)
        if name == "silences":
            return sorted(self.silences.values(), key=lambda s: str(s.get("id")))
        raise KeyError(name)

    def snapshot(self) -> dict[str, Any]:
        """Everything the page draws, JSON-ready: the first message to a page."""
        return {
            "kind": "full",
            "epoch": self.epoch,
            "version": self.version,
            "points": self.points,
            "series": [v.view(sid) for sid, v in self.series.items()],
            "expected": list(reversed(self.expected.values())),
            **{name: self.section(name) for name in SECTIONS},
        }

    def delta(self, since: int) -> dict[str, Any] | None:
        """What changed after version ``since`` (the page merges it with :func:`apply_delta`);
        None when a delta cannot say it (``since`` is from before the oldest removal kept or
        from another picture): send a :meth:`snapshot` instead."""
        if since > self.version or since < self.gone_floor:
            return None
        series = []
        for sid, v in self.series.items():
            if v.changed > since:
                part = v.view(sid, since)
                if part is not None:
                    series.append(part)
        removed: dict[str, list[str]] = {"series": [], "expected": []}
        for at, kind, ident in reversed(self.gone):
            if at <= since:
                break
            removed[kind].append(ident)
        return {
            "kind": "delta",
            "epoch": self.epoch,
            "version": self.version,
            "since": since,
            "series": series,
            "expected": [self.expected[i] for i, at in self.expected_stamps.items() if at > since],
            "removed": removed,
            **{name: self.section(name) for name in SECTIONS if self.stamps.get(name, 0) > since},
        }

    def _top(self, kind: str) -> list[dict[str, Any]]:
        table: Mapping[str, EntityTotals] = self.entities[kind]
        ranked = sorted(
            table.items(), key=lambda kv: (-(kv[1].input_tokens + kv[1].output_tokens), kv[0])
        )
        return [t.view(ident) for ident, t in ranked[: self.top_n]]


# the parts of a snapshot sent whole whenever they change (series and expected ranges are
# sent by the part that changed)
SECTIONS = (
    "window",
    "tokens",
    "black_holes",
    "findings",
    "finding_counts",
    "anomalies",
    "anomaly_learning",
    "alerts",
    "alert_changes",
    "silences",
)


def apply_delta(state: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """``state`` (a snapshot) brought up to date by ``delta``, in place: the reference for
    the page's own merge (data/ui/app.js ``applyDelta``). Windows are upserted by start and
    the oldest dropped beyond ``points``; a delta applied twice changes nothing."""
    if delta.get("kind") == "full":
        state.clear()
        state.update(delta)
        return state
    gone_series = set(delta["removed"]["series"])
    gone_expected = set(delta["removed"]["expected"])
    series = {s["id"]: s for s in state["series"] if s["id"] not in gone_series}
    for part in delta["series"]:
        have = series.get(part["id"])
        if have is None or "labels" in part:
            series[part["id"]] = dict(part)
            continue
        for i, t in enumerate(part["t"]):
            j = bisect.bisect_left(have["t"], t)
            fresh = j == len(have["t"]) or have["t"][j] != t
            if fresh:
                have["t"].insert(j, t)
            for c in COLUMNS:
                if fresh:
                    have[c].insert(j, part[c][i])
                else:
                    have[c][j] = part[c][i]
        extra = len(have["t"]) - int(state["points"])
        if extra > 0:
            for c in ("t", *COLUMNS):
                del have[c][:extra]
        for k in ("time_share", "ttft_share", "exemplars"):
            if k in part:
                have[k] = part[k]
    state["series"] = list(series.values())
    expected = {e["id"]: e for e in state["expected"] if e["id"] not in gone_expected}
    for e in delta["expected"]:
        expected[e["id"]] = e
    state["expected"] = list(expected.values())
    for name in SECTIONS:
        if name in delta:
            state[name] = delta[name]
    state["version"] = delta["version"]
    return state


def _shown(v: Any) -> Any:
    """A number as the page shows it: four significant digits (it prints two decimals), a
    third of the bytes of a full float."""
    if isinstance(v, float) and math.isfinite(v):
        return float(f"{v:.4g}")
    return v


def _push(events: deque[dict[str, Any]], rec: dict[str, Any], keep: int) -> None:
    events.append(rec)
    while len(events) > keep:
        events.popleft()


_STATUS_ORDER = {"firing": 0, "pending": 1, "resolved": 2, "inactive": 3}


def _alert_order(rec: dict[str, Any]) -> tuple[int, float]:
    return (_STATUS_ORDER.get(str(rec.get("status")), 4), -float(rec.get("at") or 0))
