"""Fitting a conversation into the model's context window: estimate, shorten old tool output, drop.

Token counts are estimated from the JSON size (about 3 characters a token, on the safe side for
English and code): exact counting needs each provider's tokenizer, and the overflow retry in the
backends catches what the estimate misses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.backends.model_info import model_info

CHARS_PER_TOKEN = 3
# An old tool output is cut to this many characters before whole turns are dropped: the model
# keeps the gist of what the tool said, and a 20k-character result stops costing every turn.
SHORT_OUTPUT_CHARS = 400
SHORTENED = "\n[… shortened to save space]"
RESERVE_OUTPUT_TOKENS = 4096


IMAGE_TOKENS = 1000  # what providers charge for a typical image, whatever its base64 length
_DATA_URL = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]*")


def estimate_tokens(items: Sequence[dict[str, Any]]) -> int:
    text = json.dumps(list(items), ensure_ascii=False, default=str)
    chars = len(text)
    for match in _DATA_URL.finditer(text):
        # An inline image is billed by its size in pixels, not by its base64 text.
        chars += IMAGE_TOKENS * CHARS_PER_TOKEN - len(match.group())
    return max(0, chars) // CHARS_PER_TOKEN + 1


@dataclass(frozen=True)
class Trimmed:
    """What fitting left out, for the one line the user is told."""

    dropped: int = 0  # earlier messages left out
    shortened: int = 0  # tool outputs cut short

    def __bool__(self) -> bool:
        return bool(self.dropped or self.shortened)

    def __add__(self, other: Trimmed) -> Trimmed:
        return Trimmed(self.dropped + other.dropped, self.shortened + other.shortened)

    def describe(self) -> str:
        parts = []
        if self.dropped:
            parts.append(f"left out {self.dropped} earlier messages")
        if self.shortened:
            parts.append(f"shortened {self.shortened} tool results")
        done = " and ".join(parts) or "trimmed it"
        return f"The conversation was too long for the model, so I {done} and tried again."


def budget_for(window: int | None, params: dict[str, Any]) -> int | None:
    """Input tokens we may send: the window less room for the answer."""
    if not window:
        return None
    answer = (
        params.get("max_tokens")
        or params.get("max_output_tokens")
        or params.get("max_completion_tokens")
    )
    reserve = min(int(answer) if answer else RESERVE_OUTPUT_TOKENS, window // 4)
    return max(256, window - reserve)


def fit(
    items: Sequence[dict[str, Any]], budget: int | None, current: int
) -> tuple[list[dict[str, Any]], Trimmed]:
    """`items` within `budget` estimated tokens; the last `current` items are this turn's.

    First old tool outputs are shortened, then the oldest turns dropped (a turn starts at a user
    message, so a tool call never loses its result), and only then this turn's own tool outputs
    shortened: one turn of big tool results can overflow on its own, and /reset cannot help that.
    """
    out = [dict(item) for item in items]
    if budget is None or estimate_tokens(out) <= budget:
        return out, Trimmed()
    old = len(out) - current
    shortened = _shorten(out, 0, old)
    dropped = 0
    while estimate_tokens(out) > budget and old > 0:
        cut = _next_turn(out, old)
        del out[:cut]
        dropped += cut
        old -= cut
    if estimate_tokens(out) > budget:
        shortened += _shorten(out, 0, len(out))
    return out, Trimmed(dropped, shortened)


def _next_turn(items: list[dict[str, Any]], limit: int) -> int:
    """How many items from the start make the oldest whole turn (never past `limit`)."""
    for position in range(1, limit):
        if items[position].get("role") == "user":
            return position
    return limit


def _shorten(items: list[dict[str, Any]], start: int, end: int) -> int:
    count = 0
    for position in range(start, end):
        item = items[position]
        key = _output_key(item)
        if key is None:
            continue
        value = item.get(key)
        if isinstance(value, str) and len(value) > SHORT_OUTPUT_CHARS + len(SHORTENED):
            items[position] = {**item, key: value[:SHORT_OUTPUT_CHARS] + SHORTENED}
            count += 1
    return count


def _output_key(item: dict[str, Any]) -> str | None:
    if item.get("role") == "tool":  # chat completions
        return "content"
    if item.get("type") == "function_call_output":  # Responses input item
        return "output"
    return None


def model_window(model: str) -> int | None:
    """The model's input window from litellm's offline model map; None when it is unknown."""
    info = model_info(model)
    return info.max_input_tokens if info is not None else None
