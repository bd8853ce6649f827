"""Token black holes: agent or tool loops that burn far more tokens than a task should.

Per trace and per session, as calls arrive (never waiting for the trace to end):
LLM calls, tool/MCP calls, total tokens, token velocity (tokens in the last minute), agent
depth, and repeated identical tool calls (same tool name and argument hash N times in a row,
or M times within a window). Each budget fires once per entity, with the evidence an on-call
engineer needs: the top calls, the repeated tool, the token curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NS = 1_000_000_000
CURVE_BUCKET_NS = 10 * NS
CURVE_BUCKETS = 60  # ten minutes of 10 s buckets
TOP_CALLS = 5


@dataclass(frozen=True)
class Budgets:
    """Limits per entity; ``None`` disables one. Built by :meth:`BudgetSettings.budgets`,
    where the defaults live."""

    max_llm_calls: int | None
    max_tool_calls: int | None
    max_tokens: int | None
    max_tokens_per_minute: int | None
    max_agent_depth: int | None
    max_repeated_tool_calls: int | None  # identical tool calls in a row
    max_same_tool_calls: int | None  # identical tool calls within repeat_window_ns
    repeat_window_ns: int


@dataclass(frozen=True)
class Call:
    """A compact call record (what ingest sends for black-hole detection)."""

    t_ns: int
    kind: str  # "llm" | "tool" | "agent" (an agent span: carries the trace's depth only)
    span_id: str
    tokens: int = 0
    model: str = ""
    tool: str = ""
    args_hash: str = ""
    depth: int = 0  # the most agent spans on one path of the call's trace, as known at ingest

    def to_list(self) -> list[Any]:
        return [
            self.t_ns,
            self.kind,
            self.span_id,
            self.tokens,
            self.model,
            self.tool,
            self.args_hash,
            self.depth,
        ]

    @classmethod
    def from_list(cls, v: list[Any]) -> Call:
        return cls(
            int(v[0]), str(v[1]), str(v[2]), int(v[3]), str(v[4]), str(v[5]), str(v[6]), int(v[7])
        )


@dataclass
class Activity:
    """Running activity of one trace or session."""

    llm_calls: int = 0
    tool_calls: int = 0
    tokens: int = 0
    max_depth: int = 0
    first_ns: int = 0
    last_ns: int = 0
    last_tool: str = ""
    run_length: int = 0
    recent: dict[str, list[int]] = field(default_factory=dict)  # tool key -> times in window
    curve: dict[int, int] = field(default_factory=dict)  # bucket start -> tokens
    top: list[list[Any]] = field(default_factory=list)  # top calls by tokens (Call lists)
    fired: list[str] = field(default_factory=list)

    def apply(
        self, calls: list[Call], budgets: Budgets, *, ordered: bool = False
    ) -> list[dict[str, Any]]:
        """Account calls in (time, span) order, or as given when ``ordered``; return the
        budgets crossed now, with evidence."""
        events = []
        for c in calls if ordered else sorted(calls, key=lambda c: (c.t_ns, c.span_id)):
            self._account(c, budgets)
            for name, value, limit in self._checks(c, budgets):
                if limit is not None and value > limit and name not in self.fired:
                    self.fired.append(name)
                    events.append(
                        {
                            "budget": name,
                            "limit": limit,
                            "value": value,
                            "at_ns": c.t_ns,
                            "evidence": self.evidence(c),
                        }
                    )
        return events

    def _account(self, c: Call, budgets: Budgets) -> None:
        self.first_ns = min(self.first_ns or c.t_ns, c.t_ns)
        self.last_ns = max(self.last_ns, c.t_ns)
        self.max_depth = max(self.max_depth, c.depth)
        if c.kind == "agent":
            return
        if c.kind == "llm":
            self.llm_calls += 1
            self.tokens += c.tokens
            bucket = c.t_ns - c.t_ns % CURVE_BUCKET_NS
            self.curve[bucket] = self.curve.get(bucket, 0) + c.tokens
            for old in sorted(self.curve)[:-CURVE_BUCKETS]:
                del self.curve[old]
            self.top.append(c.to_list())
            self.top.sort(key=lambda v: (-v[3], v[0]))
            del self.top[TOP_CALLS:]
            return
        self.tool_calls += 1
        key = f"{c.tool}#{c.args_hash}"
        self.run_length = self.run_length + 1 if key == self.last_tool else 1
        self.last_tool = key
        times = [t for t in self.recent.get(key, []) if t > c.t_ns - budgets.repeat_window_ns]
        times.append(c.t_ns)
        self.recent[key] = times[-1000:]
        if len(self.recent) > 200:  # bounded: forget the stalest tool keys
            for k in sorted(self.recent, key=lambda k: self.recent[k][-1])[:50]:
                del self.recent[k]

    def velocity(self, now_ns: int) -> int:
        """Tokens in the minute up to ``now_ns`` (10 s resolution)."""
        return sum(v for b, v in self.curve.items() if b > now_ns - 60 * NS)

    def _checks(self, c: Call, b: Budgets) -> list[tuple[str, int, int | None]]:
        same = len(self.recent.get(self.last_tool, [])) if c.kind == "tool" else 0
        return [
            ("max_llm_calls", self.llm_calls, b.max_llm_calls),
            ("max_tool_calls", self.tool_calls, b.max_tool_calls),
            ("max_tokens", self.tokens, b.max_tokens),
            ("max_tokens_per_minute", self.velocity(c.t_ns), b.max_tokens_per_minute),
            ("max_agent_depth", self.max_depth, b.max_agent_depth),
            (
                "max_repeated_tool_calls",
                self.run_length if c.kind == "tool" else 0,
                b.max_repeated_tool_calls,
            ),
            ("max_same_tool_calls", same, b.max_same_tool_calls),
        ]

    def evidence(self, c: Call) -> dict[str, Any]:
        tool, _, args = self.last_tool.partition("#")
        return {
            "llm_calls": self.llm_calls,
            "tool_calls": self.tool_calls,
            "tokens": self.tokens,
            "tokens_last_minute": self.velocity(c.t_ns),
            "max_agent_depth": self.max_depth,
            "duration_s": (self.last_ns - self.first_ns) / NS,
            "top_calls": [
                {"t_ns": v[0], "span_id": v[2], "tokens": v[3], "model": v[4]} for v in self.top
            ],
            "repeated_tool": {
                "tool": tool,
                "args_hash": args,
                "in_a_row": self.run_length,
                "in_window": len(self.recent.get(self.last_tool, [])),
            }
            if self.last_tool
            else None,
            "token_curve": [[b, v] for b, v in sorted(self.curve.items())],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "llm_calls": self.llm_calls,
            "tool_calls": self.tool_calls,
            "tokens": self.tokens,
            "max_depth": self.max_depth,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "last_tool": self.last_tool,
            "run_length": self.run_length,
            "recent": self.recent,
            "curve": [[b, v] for b, v in self.curve.items()],
            "top": self.top,
            "fired": self.fired,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Activity:
        return cls(
            d["llm_calls"],
            d["tool_calls"],
            d["tokens"],
            d["max_depth"],
            d["first_ns"],
            d["last_ns"],
            d["last_tool"],
            d["run_length"],
            {k: list(v) for k, v in d["recent"].items()},
            {int(b): int(v) for b, v in d["curve"]},
            [list(v) for v in d["top"]],
            list(d["fired"]),
        )
