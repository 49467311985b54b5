"""The usage table's writes: one row per turn, failed turns included, so budgets see every cost."""

from __future__ import annotations

from typing import Any

import aiosqlite

from bot.core.state import ConversationKey
from bot.store.records import TurnRecord


def usage_row(key: ConversationKey, turn: TurnRecord, now: str) -> tuple[str, tuple[Any, ...]]:
    """The INSERT of one turn's usage row, with its parameters."""
    return (
        "INSERT INTO usage (conversation_key, user_id, model, input_tokens, output_tokens,"
        " cached_input_tokens, reasoning_tokens, duration_s, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(key),
            turn.user_id,
            turn.model,
            turn.usage.input_tokens,
            turn.usage.output_tokens,
            turn.usage.cached_input_tokens,
            turn.usage.reasoning_tokens,
            turn.duration_s,
            now,
        ),
    )


async def insert_usage(
    db: aiosqlite.Connection, key: ConversationKey, turn: TurnRecord, now: str
) -> None:
    await db.execute(*usage_row(key, turn, now))
