"""Folding usage rows into anonymous daily totals: per-user rows go, channel totals stay right."""

from __future__ import annotations

from typing import Any

import aiosqlite

_SUMS = (
    "COUNT(*), SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),"
    " SUM(reasoning_tokens), COALESCE(SUM(cost_usd), 0.0), COUNT(*) - COUNT(cost_usd),"
    " SUM(cache_write_tokens)"
)


async def fold_usage(db: aiosqlite.Connection, where: str, parameters: tuple[Any, ...]) -> int:
    """Add the usage rows matching `where` (fixed text from the caller; values as parameters)
    to usage_daily, then delete them; return how many rows were folded. Run in a transaction."""
    await db.execute(
        "INSERT INTO usage_daily (day, guild_id, channel_id, model, turns, input_tokens,"
        " cached_input_tokens, output_tokens, reasoning_tokens, cost_usd, unpriced_turns,"
        " cache_write_tokens)"
        " SELECT substr(created_at, 1, 10) || 'T00:00:00.000000+00:00', COALESCE(guild_id, 0),"
        f" COALESCE(channel_id, 0), model, {_SUMS} FROM usage WHERE {where}"
        # The WHERE also keeps SQLite from reading ON CONFLICT as part of a join.
        " GROUP BY 1, 2, 3, 4"
        " ON CONFLICT (day, guild_id, channel_id, model) DO UPDATE SET"
        " turns = turns + excluded.turns, input_tokens = input_tokens + excluded.input_tokens,"
        " cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,"
        " output_tokens = output_tokens + excluded.output_tokens,"
        " reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,"
        " cost_usd = cost_usd + excluded.cost_usd,"
        " unpriced_turns = unpriced_turns + excluded.unpriced_turns,"
        " cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens",
        parameters,
    )
    deleted = await db.execute(f"DELETE FROM usage WHERE {where}", parameters)
    return deleted.rowcount
