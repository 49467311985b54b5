"""The cut_questions table: questions a shutdown cut off, answered once after the next start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.store.queries import Queries, now, timestamp


class CutQuestionQueries(Queries):
    async def remember_cut_question(self, channel_id: int, message_id: int) -> None:
        await self._write(
            "INSERT OR IGNORE INTO cut_questions (message_id, channel_id, created_at)"
            " VALUES (?, ?, ?)",
            (message_id, channel_id, now()),
        )

    async def take_cut_questions(self, max_age_s: float) -> list[tuple[int, int]]:
        """At start-up: (channel id, message id) of the questions to answer again, oldest first.
        Taken out here, so each is answered at most once whatever happens next."""
        rows = await self._fetch(
            "DELETE FROM cut_questions RETURNING message_id, channel_id, created_at"
        )
        cutoff = timestamp(datetime.now(UTC) - timedelta(seconds=max_age_s))
        fresh = sorted(
            (r for r in rows if r["created_at"] >= cutoff), key=lambda r: r["created_at"]
        )
        return [(int(r["channel_id"]), int(r["message_id"])) for r in fresh]
