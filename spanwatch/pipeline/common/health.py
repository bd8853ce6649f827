"""Worker health: lag per partition, last event per stage, stalled stages (broker-free).

The faust side (:mod:`agents.health`) feeds :meth:`HealthTracker.update` once a second with
what the consumer knows of each assigned partition: the end offset (high watermark, the next
offset the broker will write), the committed offset (the next one this worker will resume
from) and the last offset delivered to the stage's stream. From successive updates the
tracker knows, per partition, when records last arrived and when processing last moved on.

- **lag** = end - committed: records written but not yet processed and committed;
- a **stage** (an agent and the topics it reads) is **stalled** when one of its partitions has
  lag and its committed offset has not moved for ``stall_after_s``, while the worker is
  neither rebalancing nor restoring tables (commits happen every few seconds while records
  flow, so a busy stage is never stalled; an idle one has no lag);
- the worker is **ready** once it has joined its group and restored its tables, and is not
  stalled; it is **healthy** when its event loop keeps updating the tracker (a blocked loop
  stops the updates) and no stage is stalled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class PartitionState:
    """What the consumer knows of one assigned partition (``None``: not known yet)."""

    end: int | None
    committed: int | None
    read: int | None  # last offset delivered to the stream


@dataclass
class _Progress:
    committed: int | None = None
    read: int | None = None
    committed_at: float = 0.0  # when the committed offset last moved (or was first seen)
    read_at: float | None = None  # when a record was last delivered


@dataclass
class HealthTracker:
    """Turns periodic partition states into a health report (module docs)."""

    stages: Mapping[str, frozenset[str]]  # stage (agent) name -> topics it reads
    stall_after_s: float = 60.0
    progress: dict[TopicPartition, _Progress] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    updated_at: float | None = None
    seq: int = 0  # reports made so far: tells a fresh report from one already seen

    def update(
        self,
        now: float,
        partitions: Mapping[TopicPartition, PartitionState],
        *,
        joined: bool,
        recovering: bool,
    ) -> dict[str, Any]:
        """Record one observation at monotonic time ``now``; returns the new report."""
        for tp in list(self.progress):
            if tp not in partitions:
                del self.progress[tp]  # revoked
        rows = []
        stage_rows: dict[str, list[dict[str, Any]]] = {s: [] for s in self.stages}
        for (topic, part), st in sorted(partitions.items()):
            p = self.progress.get((topic, part))
            if p is None:
                p = self.progress[(topic, part)] = _Progress(st.committed, st.read, now)
            if st.committed != p.committed:
                p.committed, p.committed_at = st.committed, now
            if st.read is not None and st.read != p.read:
                p.read, p.read_at = st.read, now
            lag = None
            if st.end is not None:
                lag = max(st.end - (st.committed or 0), 0)
            waiting = lag is not None and lag > 0 and not recovering and joined
            stuck = waiting and now - p.committed_at >= self.stall_after_s
            row = {
                "topic": topic,
                "partition": part,
                "end": st.end,
                "committed": st.committed,
                "read": st.read,
                "lag": lag,
                "stalled": stuck,
                "since_progress_s": round(now - p.committed_at, 1),
            }
            rows.append(row)
            for stage, topics in self.stages.items():
                if topic in topics:
                    row["stage"] = stage
                    stage_rows[stage].append(row)
        stages = {}
        for stage, srows in stage_rows.items():
            reads = [self.progress[(r["topic"], r["partition"])].read_at for r in srows]
            seen = [t for t in reads if t is not None]
            stages[stage] = {
                "topics": sorted(self.stages[stage]),
                "partitions": len(srows),
                "lag": sum(r["lag"] or 0 for r in srows),
                "last_event_ago_s": round(now - max(seen), 1) if seen else None,
                "stalled": any(r["stalled"] for r in srows),
            }
        stalled = sorted(s for s, v in stages.items() if v["stalled"])
        state = (
            "starting"
            if not joined
            else "recovering"
            if recovering
            else "stalled"
            if stalled
            else "running"
        )
        self.seq += 1
        self.report = {
            "state": state,
            "ready": state == "running",
            "stalled": stalled,
            "stages": stages,
            "partitions": rows,
            "seq": self.seq,
        }
        self.updated_at = now
        return self.report

    def status(self, now: float, max_age_s: float) -> tuple[bool, bool, dict[str, Any]]:
        """(healthy, ready, report) as seen at ``now``: a report older than ``max_age_s``
        means the event loop stopped updating it (blocked or stopped)."""
        if self.updated_at is None:
            return (
                True,
                False,
                {
                    "state": "starting",
                    "ready": False,
                    "stalled": [],
                    "stages": {},
                    "partitions": [],
                    "seq": 0,
                },
            )
        age = now - self.updated_at
        report = dict(self.report, report_age_s=round(age, 1))
        if age > max_age_s:
            report["state"] = "unresponsive"
            return False, False, report
        healthy = not report["stalled"]
        return healthy, bool(report["ready"]), report
