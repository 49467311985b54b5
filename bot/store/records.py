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
