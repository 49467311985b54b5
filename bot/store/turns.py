"""A turn's save as plain statements, run as one transaction in one job on aiosqlite's thread."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.core.state import ConversationKey, ConversationState

Statement = tuple[str, tuple[Any, ...]]


def conversation_upsert(
    key: ConversationKey, state: ConversationState, history: str, now: str
) -> Statement:
    """The conversation's new state (`history` already encoded as JSON)."""
    return (
        "INSERT INTO conversations (key, guild_id, channel_id, user_id, backend, history,"
        " previous_response_id, model, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET backend = excluded.backend,"
        " history = excluded.history, previous_response_id = excluded.previous_response_id,"
        " model = excluded.model, updated_at = excluded.updated_at",
        (
            str(key),
            key.guild_id,
            key.channel_id,
            key.user_id,
            state.backend,
            history,
            state.previous_response_id,
            state.model,
            now,
            now,
        ),
    )


def run_transaction(connection: sqlite3.Connection, statements: list[Statement]) -> None:
    """On aiosqlite's thread: BEGIN IMMEDIATE, the statements, COMMIT; ROLLBACK on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        for sql, parameters in statements:
            connection.execute(sql, parameters)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
