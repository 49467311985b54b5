"""The handled_messages ledger: which messages the bot took as questions, so a start-up catch-up
answers only those it missed, each once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.store.queries import Queries, now, timestamp

KEEP_DAYS = 7


class HandledQueries(Queries):
    async def note_handled(self, channel_id: int, message_id: int) -> bool:
        """True if the message was not noted before: this caller took it."""
        cursor = await self._write(
            "INSERT OR IGNORE INTO handled_messages (message_id, channel_id, handled_at)"
            " VALUES (?, ?, ?)",
            (message_id, channel_id, now()),
        )
        return cursor.rowcount == 1

    async def last_handled_by_channel(self) -> dict[int, int]:
        """Channel id -> the newest message handled there, for channels with one in the last
        KEEP_DAYS days (older entries are dropped here)."""
        cutoff = timestamp(datetime.now(UTC) - timedelta(days=KEEP_DAYS))
        await self._write("DELETE FROM handled_messages WHERE handled_at < ?", (cutoff,))
        rows = await self._fetch(
            "SELECT channel_id, MAX(message_id) AS last FROM handled_messages GROUP BY channel_id"
        )
        return {int(row["channel_id"]): int(row["last"]) for row in rows}

    async def handled_among(self, message_ids: Sequence[int]) -> set[int]:
        ids = list(message_ids)
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        rows = await self._fetch(
            f"SELECT message_id FROM handled_messages WHERE message_id IN ({marks})", ids
        )
        return {int(row["message_id"]) for row in rows}
