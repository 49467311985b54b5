"""The usage table: one row per turn, failed turns included, so budgets see every cost."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import aiosqlite

from bot.core.keyed import keyed_hash
from bot.core.state import ConversationKey
from bot.store.queries import Queries, timestamp
from bot.store.records import TurnRecord, UsageTotals


def usage_row(key: ConversationKey, turn: TurnRecord, now: str) -> tuple[str, tuple[Any, ...]]:
    """The INSERT of one turn's usage row, with its parameters."""
    return (
        "INSERT INTO usage (conversation_key, guild_id, channel_id, user_id, model, input_tokens,"
        " output_tokens, cached_input_tokens, reasoning_tokens, cost_usd, duration_s, created_at,"
        " cache_write_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(key),
            key.guild_id,
            key.channel_id,
            turn.user_id,
            turn.model,
            turn.usage.input_tokens,
            turn.usage.output_tokens,
            turn.usage.cached_input_tokens,
            turn.usage.reasoning_tokens,
            turn.cost_usd,
            turn.duration_s,
            now,
            turn.usage.cache_write_tokens,
        ),
    )


async def insert_usage(
    db: aiosqlite.Connection, key: ConversationKey, turn: TurnRecord, now: str
) -> None:
    await db.execute(*usage_row(key, turn, now))


# The WHERE clause is filled in by the caller from fixed text; values always go as parameters.
TOTALS_SELECT = (
    "SELECT COUNT(*) AS turns, COALESCE(SUM(input_tokens), 0) AS input_tokens,"
    " COALESCE(SUM(cached_input_tokens), 0) AS cached_input_tokens,"
    " COALESCE(SUM(cache_write_tokens), 0) AS cache_write_tokens,"
    " COALESCE(SUM(output_tokens), 0) AS output_tokens,"
    " COALESCE(SUM(reasoning_tokens), 0) AS reasoning_tokens,"
    " COALESCE(SUM(cost_usd), 0.0) AS cost_usd,"
    " COUNT(*) - COUNT(cost_usd) AS unpriced_turns FROM usage"
)


def totals(row: sqlite3.Row) -> UsageTotals:
    return UsageTotals(
        turns=int(row["turns"]),
        input_tokens=int(row["input_tokens"]),
        cached_input_tokens=int(row["cached_input_tokens"]),
        cache_write_tokens=int(row["cache_write_tokens"]),
        output_tokens=int(row["output_tokens"]),
        reasoning_tokens=int(row["reasoning_tokens"]),
        cost_usd=float(row["cost_usd"]),
        unpriced_turns=int(row["unpriced_turns"]),
    )


def forgotten_hash(secret: bytes, user_id: int) -> str:
    """A user who asked to be forgotten keeps their last day of usage under this hash
    (erase.py): theirs for the daily limits and /status, and nobody's by name."""
    return keyed_hash(secret, "forgotten-user", str(user_id))


_USER = "(user_id = ? OR user_hash = ?)"

# Folded rows (usage_daily) count toward a channel's totals by their day.
_DAILY_TOTALS = (
    "SELECT COALESCE(SUM(turns), 0) AS turns, COALESCE(SUM(input_tokens), 0) AS input_tokens,"
    " COALESCE(SUM(cached_input_tokens), 0) AS cached_input_tokens,"
    " COALESCE(SUM(cache_write_tokens), 0) AS cache_write_tokens,"
    " COALESCE(SUM(output_tokens), 0) AS output_tokens,"
    " COALESCE(SUM(reasoning_tokens), 0) AS reasoning_tokens,"
    " COALESCE(SUM(cost_usd), 0.0) AS cost_usd,"
    " COALESCE(SUM(unpriced_turns), 0) AS unpriced_turns FROM usage_daily"
    " WHERE guild_id = ? AND channel_id = ? AND day >= ?"
)


class UsageQueries(Queries):
    """Reading the usage table: the daily limits and /status."""

    def _user(self, user_id: int) -> tuple[int, str]:
        return user_id, forgotten_hash(self.install_secret(), user_id)

    async def tokens_used_since(self, user_id: int, since: datetime) -> int:
        """Input plus output tokens `user_id` spent from `since` (an aware datetime) on."""
        rows = await self._fetch(
            "SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS total FROM usage"
            f" WHERE {_USER} AND created_at >= ?",
            (*self._user(user_id), timestamp(since)),
        )
        return int(rows[0]["total"])

    async def cost_used_since(self, user_id: int, since: datetime) -> float:
        """US dollars `user_id` spent from `since` on, over the turns whose price was known."""
        rows = await self._fetch(
            "SELECT COALESCE(SUM(cost_usd), 0.0) AS total FROM usage"
            f" WHERE {_USER} AND created_at >= ?",
            (*self._user(user_id), timestamp(since)),
        )
        return float(rows[0]["total"])

    async def user_usage_since(self, user_id: int, since: datetime) -> UsageTotals:
        """One user's turns from `since` on, wherever they were."""
        rows = await self._fetch(
            f"{TOTALS_SELECT} WHERE {_USER} AND created_at >= ?",
            (*self._user(user_id), timestamp(since)),
        )
        return totals(rows[0])

    async def channel_usage_since(
        self, guild_id: int, channel_id: int, since: datetime
    ) -> UsageTotals:
        """Everyone's turns in one channel (or thread) from `since` on, folded ones included
        (a folded day counts when it starts within the window)."""
        where = (guild_id, channel_id, timestamp(since))
        rows = await self._fetch(
            f"{TOTALS_SELECT} WHERE guild_id = ? AND channel_id = ? AND created_at >= ?", where
        )
        daily = await self._fetch(_DAILY_TOTALS, where)
        return totals(rows[0]) + totals(daily[0])
