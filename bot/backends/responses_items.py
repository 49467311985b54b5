"""Input items the responses backend sends back, and how it recovers from an overflow."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.backends.context import estimate_tokens, fit
from bot.core.tool_calls import ToolCall

log = logging.getLogger(__name__)

OVERFLOW_FRESH = (
    "The conversation grew too long for the model, so I started it fresh from this message."
)


@dataclass(frozen=True)
class Repair:
    """How a turn continues after an overflow."""

    notice: str
    budget: int | None
    previous: str | None
    send: list[dict[str, Any]]
    items: list[dict[str, Any]] | None  # trimmed local history plus this turn's items


def overflow_repair(
    kwargs: dict[str, Any],
    items: list[dict[str, Any]],
    current: int,
    budget: int | None,
    first_round: bool,
) -> Repair | None:
    """After an overflow: what to send instead, and the one line that says so.

    Local history is trimmed harder; a server-side conversation (truncation disabled)
    cannot be trimmed from here, so in its first round it starts fresh from this message.
    """
    if "previous_response_id" in kwargs:
        if not first_round:
            return None  # this turn's own rounds overflowed: nothing stored to leave out
        fresh = [i for i in kwargs["input"] if not is_output(i)]
        return Repair(OVERFLOW_FRESH, budget, None, fresh, None)
    size = estimate_tokens(items)
    tighter = min(budget or size, size // 2)
    fitted, trimmed = fit(items, tighter, current)
    if not trimmed:
        return None
    log.info("context overflow: %s", trimmed)
    return Repair(trimmed.describe(), tighter, None, [], fitted)


def call_item(call: ToolCall) -> dict[str, Any]:
    """The model's function call as an input item, kept so local history pairs it with its output."""
    return {
        "type": "function_call",
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments,
    }


def output_item(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def is_output(item: dict[str, Any]) -> bool:
    return item.get("type") == "function_call_output"
