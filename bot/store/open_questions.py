"""The open_questions table: where servers' questions were posted, so a restart can close them."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.queries import Queries, now


@dataclass(frozen=True)
class OpenQuestion:
    id: str
    channel_id: int
    anchor_id: int  # the message the prompt replies to
    message_id: int | None  # None: the process died before the post returned


class OpenQuestionQueries(Queries):
    async def remember_question(self, question_id: str, channel_id: int, anchor_id: int) -> None:
        """Before the prompt is posted: a question is never out there without a row."""
        await self._write(
            "INSERT OR REPLACE INTO open_questions (id, channel_id, anchor_id, created_at)"
            " VALUES (?, ?, ?, ?)",
            (question_id, channel_id, anchor_id, now()),
        )

    async def question_posted(self, question_id: str, message_id: int) -> None:
        await self._write(
            "UPDATE open_questions SET message_id = ? WHERE id = ?", (message_id, question_id)
        )

    async def forget_question(self, question_id: str) -> None:
        await self._write("DELETE FROM open_questions WHERE id = ?", (question_id,))

    async def take_open_questions(self) -> list[OpenQuestion]:
        """At start-up: the questions a previous process left open, oldest first; they are
        forgotten here, as nobody can answer them any more."""
        rows = await self._fetch(
            "DELETE FROM open_questions RETURNING id, channel_id, anchor_id, message_id, created_at"
        )
        return [
            OpenQuestion(
                id=row["id"],
                channel_id=int(row["channel_id"]),
                anchor_id=int(row["anchor_id"]),
                message_id=row["message_id"],
            )
            for row in sorted(rows, key=lambda row: row["created_at"])
        ]
