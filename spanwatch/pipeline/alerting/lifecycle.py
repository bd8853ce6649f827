"""One alert's life: inactive -> pending -> firing -> resolved, driven by samples and time.

* threshold / anomaly: the condition holds while any member's latest sample breaches (members
  silent for ``stale_s`` no longer count);
* finding / black hole (events): the condition holds at each event; ``keep_firing_for``
  (5 min by default) keeps the alert firing after the last one, then it resolves;
* absent: the condition holds once no sample arrived for ``for``; it fires at once.

``for`` delays pending -> firing; ``keep_firing_for`` delays firing -> resolved. Times are
seconds from an injected clock; the state is a plain dict (stored in a faust table).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .evaluate import Sample
from .rules import EVENT_KINDS, Rule


def _since(t: float | None, now: float) -> float:
    return 0.0 if t is None else now - t


@dataclass
class Alert:
    fingerprint: str
    rule: str
    labels: dict[str, str]
    state: str = "inactive"  # inactive | pending | firing
    active_since: float | None = None
    firing_since: float | None = None
    last_true: float | None = None
    last_sample: float | None = None
    resolved_at: float | None = None
    value: float | None = None
    context: dict[str, Any] = field(default_factory=dict)
    members: dict[str, list[Any]] = field(default_factory=dict)  # member -> [breach, value, at]
    events: int = 0  # events (or breaching samples) since the alert became active

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        return cls(**d)

    def observe(self, s: Sample, now: float) -> None:
        if self.state != "inactive" and any(m[0] for m in self.members.values()):
            self.last_true = now  # the condition held until this sample (keep_firing_for)
        self.members[s.member] = [s.breach, s.value, now]
        self.last_sample = now
        if s.breach:
            self.events += 1
            self.context = s.context
            self.value = s.value
        elif not any(m[0] for m in self.members.values()):
            self.value, self.context = s.value, {**self.context, **s.context}

    def condition(self, rule: Rule, now: float, stale_s: float) -> bool:
        if rule.kind == "absent":
            return self.last_sample is not None and now - self.last_sample >= rule.for_s
        if rule.kind in EVENT_KINDS:
            return False  # events are applied in step(), at the moment they arrive
        for member, (_, _, at) in list(self.members.items()):
            if now - at > stale_s:
                del self.members[member]
        breaching = [(v, m) for m, (b, v, _) in self.members.items() if b and v is not None]
        if breaching:  # the worst member is the alert's value
            worst = max(breaching) if rule.op in (">", ">=", "==", "!=") else min(breaching)
            self.value = worst[0]
        return bool(breaching)

    def step(self, rule: Rule, now: float, event: bool, stale_s: float) -> str | None:
        """Advance the state; returns the new state name on a change (``pending``,
        ``firing``, ``resolved``, ``inactive``), else None."""
        cond = event or self.condition(rule, now, stale_s)
        if cond:
            self.last_true = now
            changed = None
            if self.state == "inactive":
                self.state, self.active_since, self.resolved_at = "pending", now, None
                changed = "pending"
            hold = 0.0 if rule.kind == "absent" else rule.for_s  # absence already waited 'for'
            if self.state == "pending" and _since(self.active_since, now) >= hold:
                self.state, self.firing_since = "firing", now
                changed = "firing"
            return changed
        if self.state == "pending":
            grace = rule.keep_firing_for_s if rule.kind in EVENT_KINDS else 0.0
            if _since(self.last_true, now) >= grace:
                self._reset()
                return "inactive"
        elif self.state == "firing" and _since(self.last_true, now) >= rule.keep_firing_for_s:
            self._reset()
            self.resolved_at = now
            return "resolved"
        return None

    def _reset(self) -> None:
        self.state, self.active_since, self.firing_since, self.events = "inactive", None, None, 0
