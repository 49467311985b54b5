"""One structured log line per turn, for operators: who, which model, what it cost, how it ended.

Only counts, names and outcomes: never the user's text, the answer, tool arguments or results
(they may hold anything, secrets included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from bot.core.events import (
    SamplingUsed,
    ToolCallFinished,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    Usage,
)
from bot.core.state import ConversationKey

log = logging.getLogger("bot.turn")

CostOf = Callable[[str, Usage], float | None]


def price(cost_of: CostOf | None, model: str, usage: Usage) -> float | None:
    """What `usage` on `model` cost; None when unknown (no price list, no model, no price)."""
    return cost_of(model, usage) if cost_of is not None and model else None


def turn_cost(parts: Iterable[float | None]) -> float | None:
    """A turn's cost from its parts (its own requests, each sampling request answered for an MCP
    server): a part without a known price adds nothing; None only when no part has a price."""
    known = [cost for cost in parts if cost is not None]
    return sum(known) if known else None


class TurnLog:
    """Watches one turn's events; `emit()` writes its line (also for a cancelled turn)."""

    def __init__(self, key: ConversationKey, model: str, cost_of: CostOf | None = None) -> None:
        self._key = key
        self._model = model
        self._cost_of = cost_of
        self._started = time.monotonic()
        self._usage = Usage()
        self._sampled = Usage()  # MCP servers' sampling requests, answered by the bot's model
        self._sampled_costs: list[float | None] = []
        self._tools: list[str] = []
        self._result = "cancelled"

    def see(self, event: TurnEvent) -> None:
        if isinstance(event, SamplingUsed):
            self._sampled = self._sampled + event.usage
            self._sampled_costs.append(price(self._cost_of, event.model, event.usage))
        elif isinstance(event, ToolCallFinished):
            self._tools.append(f"{event.server}.{event.tool}:{event.outcome}")
        elif isinstance(event, TurnCompleted):
            self._usage, self._model, self._result = event.usage, event.model, "completed"
        elif isinstance(event, TurnFailed):
            self._result = "failed"
            # A failed turn may still report what it cost (backends that track it).
            self._usage = getattr(event, "usage", None) or self._usage
            self._model = getattr(event, "model", "") or self._model

    def fields(self) -> dict[str, Any]:
        # The same totals the turn's usage row stores: sampling counts with the turn.
        usage = self._usage + self._sampled
        cost = turn_cost([price(self._cost_of, self._model, self._usage), *self._sampled_costs])
        return {
            "conversation": str(self._key),
            "model": self._model or None,  # unknown when the turn failed before an answer
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "cost_usd": round(cost, 6) if cost is not None else None,
            "duration_s": round(time.monotonic() - self._started, 3),
            "tools": self._tools,
            "result": self._result,
        }

    def emit(self) -> None:
        fields = self.fields()
        text = " ".join(f"{name}={_plain(value)}" for name, value in fields.items())
        # Text format shows the key=value line; the JSON format adds the fields as an object.
        log.info("turn %s", text, extra={"turn": fields})


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value) or "-"
    return "-" if value is None else str(value)
