"""The alert manager's side as a driver: messages in, commands out.

The alert-manager agent (``agents/alerting.py``, the one worker that owns the single
partition of ``spanwatch.alerting``) feeds :class:`AlertingDriver` each message of that topic
(a rule sample, a tick, a silence command, a delivery's outcome) with the time, and carries
out the :class:`AlertCommands` it returns: table writes, silences to publish, alert records
to send, deliveries to start. Every decision is made here, so unit tests drive it with no
broker:

* **state**: the :class:`~pipeline.alerting.manager.AlertManager` is loaded from the table
  once after each assignment (a takeover restores every alert, group, silence and pending
  notification), before the first message;
* **deliveries**: a notification that is due starts once; it is not started again while it
  runs (its outcome comes back as a ``delivery`` message), and one whose outcome could not
  be recorded is due again at the next tick.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .evaluate import Sample
from .manager import AlertManager, Pending
from .silences import Silence

SILENCE_PREFIX = "s:"  # the manager's table keys of silences


@dataclass
class AlertCommands:
    """What the agent does for one message, in this order."""

    # table writes (key, value; None deletes); silences among them also go to the
    # silences topic (key without the prefix, value or a tombstone)
    writes: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # to spanwatch.alerts
    deliveries: list[Pending] = field(default_factory=list)  # to start now
    notes: list[tuple[int, str]] = field(default_factory=list)  # (log level, line)

    def silences(self) -> list[tuple[str, dict[str, Any] | None]]:
        return [
            (k[len(SILENCE_PREFIX) :], v) for k, v in self.writes if k.startswith(SILENCE_PREFIX)
        ]


@dataclass
class AlertingDriver:
    manager: AlertManager
    loaded: bool = False
    in_flight: set[str] = field(default_factory=set)  # deliveries started, no outcome yet
    samples: int = 0

    def assigned(self) -> None:
        """The partition was (re)assigned: load the table again before the next message."""
        self.loaded = False

    def load(self, table: Iterable[tuple[str, Any]]) -> str:
        """Replace the manager's state by the table's; returns a line for the log."""
        mgr = self.manager
        for store in (mgr.alerts, mgr.groups, mgr.silences, mgr.outbox):
            store.clear()
        for key, value in table:
            if isinstance(value, dict):
                mgr.load(key, value)
        self.in_flight.clear()
        self.loaded = True
        return (
            f"alert manager: {len(mgr.alerts)} alerts, {len(mgr.groups)} groups, "
            f"{len(mgr.silences)} silences, {len(mgr.outbox)} pending notifications"
        )

    def message(self, msg: dict[str, Any], now: float) -> AlertCommands:
        """One message of ``spanwatch.alerting`` at wall time ``now`` (seconds)."""
        if not self.loaded:
            raise RuntimeError("load() the table first")
        mgr, cmds = self.manager, AlertCommands()
        kind = msg.get("type")
        if kind == "sample":
            self.samples += 1
            cmds.records = mgr.observe(Sample.from_dict(msg), now)
        elif kind == "tick":
            cmds.records = mgr.tick(now)
        elif kind == "silence_add":
            mgr.add_silence(Silence.from_dict(msg["silence"]))
            silence = msg["silence"]
            cmds.notes.append(
                (logging.INFO, f"silence {silence['id']} added: {silence['matchers']}")
            )
        elif kind == "silence_expire":
            if not mgr.expire_silence(msg["id"], now):
                cmds.notes.append(
                    (logging.WARNING, f"silence {msg['id']}: not found or already expired")
                )
        elif kind == "delivery":
            self.in_flight.discard(msg["id"])
            mgr.delivered(msg["id"], msg["outcome"], msg.get("error", ""), now)
        cmds.writes = mgr.take_dirty()
        for p in mgr.due(now):
            if p.id not in self.in_flight:
                self.in_flight.add(p.id)
                cmds.deliveries.append(p)
        return cmds

    def not_recorded(self, pid: str) -> None:
        """A delivery's outcome could not be sent back: start it again when it is due."""
        self.in_flight.discard(pid)
