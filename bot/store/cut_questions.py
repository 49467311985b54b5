"""The cut_questions table: questions a shutdown cut off, answered once after the next start."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.store.queries import Queries, now, timestamp


class CutQuestionQueries(Queries):
    async def remember_cut_question(
        self, channel_id: int, message_id: int, reply_ids: Sequence[int] = ()
    ) -> None:
        """`reply_ids`: the parts of the reply the cut left, which the next answer replaces."""
        await self._write(
            "INSERT OR IGNORE INTO cut_questions (message_id, channel_id, created_at, reply_ids)"
            " VALUES (?, ?, ?, ?)",
            (message_id, channel_id, now(), " ".join(map(str, reply_ids))),
        )

    async def take_cut_questions(self, max_age_s: float) -> list[tuple[int, int, tuple[int, ...]]]:
        """At start-up: (channel id, message id, its cut reply's parts) of the questions to
        answer again, oldest first. Taken out here, so each is answered at most once whatever
        happens next."""
        rows = await self._fetch(
            "DELETE FROM cut_questions RETURNING message_id, channel_id, created_at, reply_ids"
        )
        cutoff = timestamp(datetime.now(UTC) - timedelta(seconds=max_age_s))
        fresh = sorted(
            (r for r in rows if r["created_at"] >= cutoff), key=lambda r: r["created_at"]
        )
        return [
            (int(r["channel_id"]), int(r["message_id"]), tuple(map(int, r["reply_ids"].split())))
            for r in fresh
        ]
