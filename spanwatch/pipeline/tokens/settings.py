"""``tokens:``: token accounting's configuration section, with its black-hole budgets.

Settings models live apart from the code that runs per span, so that code can be compiled
(mypyc, see README "Building wheels") while pydantic keeps its plain classes."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ..common.durations import parse_duration_ns
from ..common.settings import Duration, SettingsModel
from .blackhole import Budgets
from .burn import MAX_TRACKED, TOP_N
from .pricing import DEFAULT_PRICES, PriceTable


class BudgetSettings(SettingsModel):
    """Black-hole budgets of one entity kind (``null`` disables a budget)."""

    max_llm_calls: int | None = Field(50, ge=1)
    max_tool_calls: int | None = Field(100, ge=1)
    max_tokens: int | None = Field(500_000, ge=1)
    max_tokens_per_minute: int | None = Field(200_000, ge=1)
    max_agent_depth: int | None = Field(8, ge=1)
    max_repeated_tool_calls: int | None = Field(5, ge=1)
    max_same_tool_calls: int | None = Field(10, ge=1)
    repeat_window: Duration = "5m"

    def budgets(self) -> Budgets:
        d = self.model_dump()
        d["repeat_window_ns"] = parse_duration_ns(d.pop("repeat_window"))
        return Budgets(**d)


class TokensSettings(SettingsModel):
    """Token accounting, cost and black holes (windows as in ``metrics``)."""

    enabled: bool = True
    prices: Path = DEFAULT_PRICES
    trace_budgets: BudgetSettings = BudgetSettings()
    session_budgets: BudgetSettings = BudgetSettings(
        max_llm_calls=500,
        max_tool_calls=1000,
        max_tokens=5_000_000,
        max_tokens_per_minute=300_000,
        max_agent_depth=None,
        max_repeated_tool_calls=None,
        max_same_tool_calls=30,
    )
    activity_idle_timeout: Duration = "30m"  # traces/sessions quiet this long are forgotten
    max_tracked: int = Field(MAX_TRACKED, ge=1)  # beyond: overflow
    top_n: int = Field(TOP_N, ge=1, le=1000)

    def price_table(self) -> PriceTable:
        return PriceTable.load(self.prices)
