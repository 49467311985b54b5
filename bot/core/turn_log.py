"""One structured log line per turn, for operators: who, which model, what it cost, how it ended.

Only counts, names and outcomes: never the user's text, the answer, tool arguments or results
(they may hold anything, secrets included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bot.core.events import ToolCallFinished, TurnCompleted, TurnEvent, TurnFailed, Usage
from bot.core.state import ConversationKey

log = logging.getLogger("bot.turn")

CostOf = Callable[[str, Usage], float | None]


class TurnLog:
    """Watches one turn's events; `emit()` writes its line (also for a cancelled turn)."""

    def __init__(self, key: ConversationKey, model: str, cost_of: CostOf | None = None) -> None:
        self._key = key
        self._model = model
        self._cost_of = cost_of
        self._started = time.monotonic()
        self._usage = Usage()
        self._tools: list[str] = []
        self._result = "cancelled"

    def see(self, event: TurnEvent) -> None:
        if isinstance(event, ToolCallFinished):
            self._tools.append(f"{event.server}.{event.tool}:{event.outcome}")
        elif isinstance(event, TurnCompleted):
            self._usage, self._model, self._result = event.usage, event.model, "completed"
        elif isinstance(event, TurnFailed):
            self._result = "failed"
            # A failed turn may still report what it cost (backends that track it).
            self._usage = getattr(event, "usage", None) or self._usage
            self._model = getattr(event, "model", "") or self._model

    def fields(self) -> dict[str, Any]:
        cost = self._cost_of(self._model, self._usage) if self._cost_of else None
        return {
            "conversation": str(self._key),
            "model": self._model or None,  # unknown when the turn failed before an answer
            "input_tokens": self._usage.input_tokens,
            "output_tokens": self._usage.output_tokens,
            "cached_tokens": self._usage.cached_input_tokens,
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
