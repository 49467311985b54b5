"""storage.retention_days: what is older than N days goes; usage is folded, not lost from totals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosqlite

from bot.store.erase import KEPT_USAGE
from bot.store.queries import timestamp
from bot.store.usage_fold import fold_usage


@dataclass(frozen=True)
class Expired:
    conversations: int = 0
    approvals: int = 0
    usage: int = 0  # rows folded into anonymous daily totals

    def __bool__(self) -> bool:
        return bool(self.conversations or self.approvals or self.usage)


async def fold_forgotten_usage(db: aiosqlite.Connection, now: datetime) -> int:
    """A forgotten user's usage is kept a day for the daily limits, then ages out into the
    anonymous totals. Runs whatever retention says."""
    cutoff = timestamp(now - KEPT_USAGE)
    return await fold_usage(db, "user_hash IS NOT NULL AND created_at < ?", (cutoff,))


async def expire(db: aiosqlite.Connection, days: int, now: datetime) -> Expired:
    """Delete conversations idle for `days`, approvals and usage rows older than that (usage
    folded into the daily totals). Run inside a write transaction."""
    cutoff = timestamp(now - timedelta(days=days))
    gone = await db.execute_fetchall(
        "DELETE FROM conversations WHERE updated_at < ? RETURNING key", (cutoff,)
    )
    keys = [row[0] for row in gone]
    for key in keys:
        await db.execute("DELETE FROM tool_grants WHERE conversation_key = ?", (key,))
    # A grant can come before its conversation's first save: one without a conversation goes
    # once it is as old as the cutoff. A grant or an author row of a kept conversation stays
    # (its words are still in the history, and /forget must still find them).
    await db.execute(
        "DELETE FROM tool_grants WHERE created_at < ? AND conversation_key NOT IN"
        " (SELECT key FROM conversations)",
        (cutoff,),
    )
    await db.execute(
        "DELETE FROM turn_authors WHERE conversation_key NOT IN (SELECT key FROM conversations)"
    )
    approvals = await db.execute(
        "DELETE FROM approvals WHERE created_at < ? AND status != 'pending'", (cutoff,)
    )
    usage = await fold_usage(db, "created_at < ?", (cutoff,))
    return Expired(conversations=len(keys), approvals=approvals.rowcount, usage=usage)
