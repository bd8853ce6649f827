"""Stage 2 of alerting: all alert state in one place (an Alertmanager in miniature).

Samples advance alerts (:mod:`pipeline.alerting.lifecycle`); firing and resolved alerts join
notification groups per route (``group_by``); a group is flushed ``group_wait`` after it
appears, then at most every ``group_interval`` when it changes, and every
``repeat_interval`` while it keeps firing. Silenced and inhibited alerts are recorded but not
notified. Notifications wait in an outbox (with attempts and the next retry time) until a
delivery succeeds, so a restart does not lose them. Everything is keyed state
(``a:``/``g:``/``s:``/``o:`` + id) that the agent persists in a faust table; the clock is
injected (seconds).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..common.durations import parse_duration_ns
from ..common.retry import backoff_s
from . import templates
from .evaluate import Sample
from .lifecycle import Alert
from .loader import RuleSet
from .matchers import all_match
from .rules import EVENT_KINDS, Rule
from .settings import AlertingSettings
from .silences import Silence


@dataclass
class Group:
    key: str
    receiver: str
    route: str  # path of the route in the tree ("0", "0.1", ...)
    labels: dict[str, str]
    alerts: list[str] = field(default_factory=list)
    first_at: float = 0.0
    last_flush: float | None = None
    next_flush: float | None = None
    sent: list[str] = field(default_factory=list)  # firing fingerprints last notified

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Pending:
    """A notification waiting for delivery."""

    id: str
    receiver: str
    group: str
    title: str
    body: str
    status: str  # firing | resolved (of the group: firing if any alert fires)
    alerts: list[str]
    created_at: float
    next_at: float
    attempts: int = 0
    last_error: str = ""
    url_index: int = -1  # which of the receiver's URLs; -1: the console

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AlertManager:
    """Alerts, groups, silences and the notification outbox of one rule set. Its limits come
    from the ``alerting:`` section (:class:`~pipeline.alerting.settings.AlertingSettings`,
    where their defaults live)."""

    def __init__(
        self,
        ruleset: RuleSet,
        settings: AlertingSettings | None = None,
        *,
        formatter: Any = None,
    ) -> None:
        cfg = settings if settings is not None else AlertingSettings()
        self.rules: dict[str, Rule] = ruleset.by_name()
        self.config = ruleset.config
        self.stale_s = parse_duration_ns(cfg.stale_after) / 1e9
        self.max_alerts, self.max_attempts = cfg.max_alerts, cfg.max_attempts
        self.alerts: dict[str, Alert] = {}
        self.groups: dict[str, Group] = {}
        self.silences: dict[str, Silence] = {}
        self.outbox: dict[str, Pending] = {}
        self.dirty: set[str] = set()
        self.counters: Counter[str] = Counter()
        if formatter is None:
            from .notify import format_message

            formatter = format_message
        self.format = formatter

    # --- persistence -------------------------------------------------------------------
    def export(self, key: str) -> dict[str, Any] | None:
        kind, ident = key[:2], key[2:]
        stores: dict[str, dict[str, Any]] = {
            "a:": self.alerts,
            "g:": self.groups,
            "s:": self.silences,
            "o:": self.outbox,
        }
        obj = stores[kind].get(ident)
        return None if obj is None else obj.to_dict()

    def load(self, key: str, value: dict[str, Any]) -> None:
        kind, ident = key[:2], key[2:]
        if kind == "a:":
            if value.get("rule") in self.rules:  # rules removed since: forget their alerts
                self.alerts[ident] = Alert.from_dict(value)
        elif kind == "g:":
            self.groups[ident] = Group(**value)
        elif kind == "s:":
            self.silences[ident] = Silence.from_dict(value)
        elif kind == "o:":
            self.outbox[ident] = Pending(**value)

    def take_dirty(self) -> list[tuple[str, dict[str, Any] | None]]:
        out = [(k, self.export(k)) for k in sorted(self.dirty)]
        self.dirty.clear()
        return out

    # --- alerts --------------------------------------------------------------------------
    def observe(self, sample: Sample, now: float) -> list[dict[str, Any]]:
        rule = self.rules.get(sample.rule)
        if rule is None:
            self.counters["samples_unknown_rule"] += 1
            return []
        fp = sample.fingerprint
        alert = self.alerts.get(fp)
        if alert is None:
            if not sample.breach and rule.kind != "absent":
                return []  # healthy series hold no alert state (absence needs it)
            if len(self.alerts) >= self.max_alerts:
                self.counters["alerts_overflow"] += 1
                return []
            alert = self.alerts[fp] = Alert(fp, rule.name, sample.labels)
        alert.observe(sample, now)
        self.dirty.add("a:" + fp)
        event = rule.kind in EVENT_KINDS and sample.breach
        records = self._advance(alert, rule, now, event)
        self._flush_due(now)
        return records

    def tick(self, now: float) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for alert in list(self.alerts.values()):
            rule = self.rules.get(alert.rule)
            if rule is not None:
                records += self._advance(alert, rule, now, False)
        for s in list(self.silences.values()):
            if s.ends_at < now - 86400:  # expired for a day: forget
                del self.silences[s.id]
                self.dirty.add("s:" + s.id)
        self._flush_due(now)
        return records

    def _advance(self, alert: Alert, rule: Rule, now: float, event: bool) -> list[dict[str, Any]]:
        change = alert.step(rule, now, event, self.stale_s)
        if change is None:
            return []
        self.dirty.add("a:" + alert.fingerprint)
        self.counters[f"alerts_{change}"] += 1
        if change in ("firing", "resolved"):
            self._enqueue(alert, now)
        elif change == "inactive" and not self._in_groups(alert.fingerprint):
            self._drop(alert.fingerprint)
        return [self.record(alert, rule, change, now)]

    def _in_groups(self, fp: str) -> bool:
        return any(fp in g.alerts for g in self.groups.values())

    def _drop(self, fp: str) -> None:
        self.alerts.pop(fp, None)
        self.dirty.add("a:" + fp)

    def record(self, alert: Alert, rule: Rule, status: str, now: float) -> dict[str, Any]:
        """The ``spanwatch.alerts`` record of a state change (docs/SCHEMAS.md)."""
        ctx = self.template_context(alert, rule)
        return {
            "type": "alert",
            "status": status,
            "alertname": rule.name,
            "rule": rule.name,
            "kind": rule.kind,
            "fingerprint": alert.fingerprint,
            "labels": alert.labels,
            "annotations": {k: templates.render(v, ctx) for k, v in rule.annotations.items()},
            "value": alert.value,
            "signal": ctx["signal"],
            "op": rule.op,
            "threshold": ctx["threshold"],
            "unit": ctx["unit"],
            "expected": ctx["expected"],
            "trace_id": ctx["trace_id"],
            "trace_url": ctx["trace_url"] or None,
            "starts_at": alert.firing_since or alert.active_since,
            "ends_at": alert.resolved_at if status == "resolved" else None,
            "silenced": self.silenced(alert.labels, now),
            "inhibited": self.inhibited(alert),
            "at": now,
        }

    def template_context(self, alert: Alert, rule: Rule) -> dict[str, Any]:
        c = alert.context
        trace_id = c.get("trace_id")
        trace_url = (
            templates.render(self.config.trace_url, {"trace_id": trace_id})
            if trace_id and self.config.trace_url
            else ""
        )
        return {
            "value": alert.value,
            "threshold": c.get("threshold", rule.threshold),
            "labels": alert.labels,
            "expected": c.get("expected"),
            "top": c.get("top", []),
            "trace_id": trace_id,
            "trace_url": trace_url,
            "signal": c.get("signal"),
            "unit": c.get("unit", ""),
            "alertname": rule.name,
            "count": alert.events,
            "excerpt": c.get("excerpt", ""),
            "score": c.get("score"),
        }

    # --- silences and inhibition ------------------------------------------------------
    def add_silence(self, s: Silence) -> None:
        self.silences[s.id] = s
        self.dirty.add("s:" + s.id)

    def expire_silence(self, sid: str, now: float) -> bool:
        s = self.silences.get(sid)
        if s is None or s.ends_at <= now:
            return False
        s.ends_at = now
        self.dirty.add("s:" + sid)
        return True

    def silenced(self, labels: dict[str, str], now: float) -> bool:
        return any(s.active(now) and s.matches(labels) for s in self.silences.values())

    def inhibited(self, alert: Alert) -> bool:
        for rule in self.config.inhibit_rules:
            if not all_match(rule.target, alert.labels):
                continue
            for other in self.alerts.values():
                if (
                    other.state == "firing"
                    and other.fingerprint != alert.fingerprint
                    and all_match(rule.source, other.labels)
                    and all(other.labels.get(k) == alert.labels.get(k) for k in rule.equal)
                ):
                    return True
        return False

    # --- groups ----------------------------------------------------------------------------
    def _enqueue(self, alert: Alert, now: float) -> None:
        for path, route in self.config.route.match(alert.labels):
            glabels = {k: alert.labels.get(k, "") for k in route.group_by}
            gkey = hashlib.sha1(f"{path}|{sorted(glabels.items())}".encode()).hexdigest()[:16]
            g = self.groups.get(gkey)
            if g is None:
                g = self.groups[gkey] = Group(
                    gkey,
                    route.receiver,
                    path,
                    glabels,
                    first_at=now,
                    next_flush=now + route.group_wait_s,
                )
            if alert.fingerprint not in g.alerts:
                g.alerts.append(alert.fingerprint)
            if g.last_flush is not None:
                due = g.last_flush + route.group_interval_s
                g.next_flush = min(g.next_flush, due) if g.next_flush is not None else due
            self.dirty.add("g:" + gkey)

    def _flush_due(self, now: float) -> None:
        for g in list(self.groups.values()):
            if g.next_flush is not None and g.next_flush <= now:
                self._flush(g, now)

    def _flush(self, g: Group, now: float) -> None:
        route = self.config.route.at(g.route)
        receiver = self.config.receivers[g.receiver]
        members = [self.alerts[fp] for fp in g.alerts if fp in self.alerts]
        firing = [
            a
            for a in members
            if a.state == "firing" and not self.silenced(a.labels, now) and not self.inhibited(a)
        ]
        resolved = [a for a in members if a.state != "firing" and a.resolved_at is not None]
        fps = sorted(a.fingerprint for a in firing)
        changed = fps != sorted(g.sent) or bool(resolved)
        repeat = g.last_flush is not None and now - g.last_flush >= route.repeat_interval_s
        shown_resolved = resolved if receiver.send_resolved else []
        if (firing or shown_resolved) and (changed or repeat):
            self._notify(g, receiver.name, firing, shown_resolved, now)
            g.last_flush = now
            g.sent = fps
        elif g.last_flush is None:
            g.last_flush = now
        for a in resolved:
            g.alerts.remove(a.fingerprint)
            if not self._in_groups(a.fingerprint) and a.state != "firing":
                self._drop(a.fingerprint)
        g.alerts = [fp for fp in g.alerts if fp in self.alerts]
        # Re-check every group_interval while anything fires (a silence may expire, an
        # inhibiting alert resolve); notify again only on a change or after repeat_interval.
        if any(self.alerts[fp].state == "firing" for fp in g.alerts):
            g.next_flush = now + min(route.group_interval_s, route.repeat_interval_s)
        else:
            g.next_flush = None
        self.dirty.add("g:" + g.key)
        if not g.alerts:
            del self.groups[g.key]

    def _notify(
        self, g: Group, receiver: str, firing: list[Alert], resolved: list[Alert], now: float
    ) -> None:
        rendered = [(a, self.rules[a.rule]) for a in firing + resolved if a.rule in self.rules]
        rcv = self.config.receivers[receiver]
        title, body = self.format(rcv, g.labels, [self._message_alert(a, r) for a, r in rendered])
        targets = ([-1] if rcv.console else []) + list(range(len(rcv.urls)))
        for idx in targets:  # one notification per URL: a retry never repeats a success
            pid = hashlib.sha1(f"{g.key}|{now}|{len(self.outbox)}|{idx}".encode()).hexdigest()[:16]
            self.outbox[pid] = Pending(
                pid,
                receiver,
                g.key,
                title,
                body,
                "firing" if firing else "resolved",
                [a.fingerprint for a, _ in rendered],
                now,
                now,
                url_index=idx,
            )
            self.dirty.add("o:" + pid)
            self.counters["notifications_queued"] += 1

    def _message_alert(self, a: Alert, rule: Rule) -> dict[str, Any]:
        """One alert as the message formatter wants it (templates rendered once)."""
        ctx = self.template_context(a, rule)
        return {
            "status": "firing" if a.state == "firing" else "resolved",
            "alertname": rule.name,
            "labels": a.labels,
            "value": a.value,
            "since": a.firing_since,
            "trace_url": ctx["trace_url"],
            "annotations": {k: templates.render(v, ctx) for k, v in rule.annotations.items()},
        }

    # --- delivery -----------------------------------------------------------------------
    def due(self, now: float) -> list[Pending]:
        return sorted(
            (p for p in self.outbox.values() if p.next_at <= now), key=lambda p: (p.next_at, p.id)
        )

    def delivered(self, pid: str, outcome: str, error: str, now: float) -> None:
        """``outcome``: ``ok``, ``retry`` (5xx, timeout) or ``config`` (4xx, no target)."""
        p = self.outbox.get(pid)
        if p is None:
            return
        self.dirty.add("o:" + pid)
        p.attempts += 1
        p.last_error = error
        if outcome == "ok" or outcome == "config" or p.attempts >= self.max_attempts:
            del self.outbox[pid]
            self.counters[
                {"ok": "notifications_sent", "config": "notifications_config_error"}.get(
                    outcome, "notifications_gave_up"
                )
            ] += 1
            return
        self.counters["notifications_retried"] += 1
        p.next_at = now + backoff_s(p.attempts, 1.0, key=pid)  # the same wait after a restart
