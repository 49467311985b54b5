"""The values the store takes and gives back, kept apart from SQL so callers need not import it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.events import Usage
from bot.core.state import ConversationKey

PENDING = "pending"
# The outcomes a pending approval can move to; mirrored by a CHECK constraint in the schema.
DECISIONS = frozenset({"approved", "denied", "always", "timeout", "expired"})


@dataclass(frozen=True)
class TurnRecord:
    """One finished turn's accounting. `user_id` is who asked, even in a channel-wide conversation."""

    user_id: int
    model: str
    usage: Usage
    duration_s: float
    cost_usd: float | None = None  # None: the model has no price in litellm's map


@dataclass(frozen=True)
class UsageTotals:
    """Tokens and dollars summed over some turns. `cost_usd` covers the priced turns only;
    `unpriced_turns` says how many had no known price."""

    turns: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_turns: int = 0
    cache_write_tokens: int = 0  # a part of input_tokens, as cached_input_tokens is

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            turns=self.turns + other.turns,
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            unpriced_turns=self.unpriced_turns + other.unpriced_turns,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(frozen=True)
class ApprovalRecord:
    id: int
    key: ConversationKey
    call_id: str
    server: str
    tool: str
    arguments: dict[str, Any]
    requester_id: int
    status: str  # pending | approved | denied | always | timeout | expired
    decided_by: int | None
    channel_id: int | None  # where the buttons were posted; None until attach_approval_message
    message_id: int | None
    created_at: datetime  # UTC
    decided_at: datetime | None
    edited_arguments: dict[str, Any] | None = None  # approved with these instead of `arguments`
    reason: str | None = None  # denied with these words
