"""Approval rows and the turn positions stored with them, so a turn resumes after a restart."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from bot.core.state import ConversationKey
from bot.store.queries import Queries, now
from bot.store.records import PENDING, ApprovalRecord

APPROVAL_COLUMNS = (
    "id, conversation_key, call_id, server, tool, arguments, requester_id, status, decided_by,"
    " channel_id, message_id, created_at, decided_at, edited_arguments, reason"
)
# One conversation runs one turn at a time, so it has at most one stored position: the newest.
DROP_RESUME = (
    "UPDATE approvals SET resume_state = NULL"
    " WHERE conversation_key = ? AND resume_state IS NOT NULL"
)


def approval_record(row: sqlite3.Row) -> ApprovalRecord:
    return ApprovalRecord(
        id=row["id"],
        key=ConversationKey.parse(row["conversation_key"]),
        call_id=row["call_id"],
        server=row["server"],
        tool=row["tool"],
        arguments=json.loads(row["arguments"]),
        requester_id=row["requester_id"],
        status=row["status"],
        decided_by=row["decided_by"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        created_at=datetime.fromisoformat(row["created_at"]),
        decided_at=datetime.fromisoformat(row["decided_at"]) if row["decided_at"] else None,
        edited_arguments=(
            json.loads(row["edited_arguments"]) if row["edited_arguments"] is not None else None
        ),
        reason=row["reason"],
    )


def _arguments_json(arguments: dict[str, Any]) -> str:
    # allow_nan=False: NaN/Infinity are not JSON; ASCII: a lone surrogate stays storable.
    return json.dumps(arguments, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


class ApprovalResumeQueries(Queries):
    async def create_approval(
        self,
        *,
        key: ConversationKey,
        call_id: str,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        requester_id: int,
        resume: str | None = None,
    ) -> int:
        """Record a pending approval and return its id (the one the buttons' custom_id carries).
        `resume`: where the asking turn stands, in the same transaction, so no prompt is ever
        posted whose turn could not continue after a restart; it replaces the conversation's
        older position (one turn at a time)."""
        encoded = _arguments_json(arguments)
        async with self._transaction() as db:
            if resume is not None:
                await db.execute(DROP_RESUME, (str(key),))
            cursor = await db.execute(
                "INSERT INTO approvals (conversation_key, call_id, server, tool, arguments,"
                " requester_id, created_at, resume_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (str(key), call_id, server, tool, encoded, requester_id, now(), resume),
            )
        assert cursor.lastrowid is not None  # always set after a successful INSERT
        return cursor.lastrowid

    async def keep_resume(self, approval_id: int, resume: str) -> None:
        """The turn has moved on (a tool is about to run, a round ended): its new position.
        Only while the row still holds one: an ended turn's position is never written back."""
        await self._write(
            "UPDATE approvals SET resume_state = ? WHERE id = ? AND resume_state IS NOT NULL",
            (resume, approval_id),
        )

    async def end_resume(self, key: ConversationKey) -> None:
        """The conversation's turn ended: nothing of it is to continue after a restart."""
        await self._write(DROP_RESUME, (str(key),))

    async def drop_resume(self, approval_id: int) -> None:
        await self._write("UPDATE approvals SET resume_state = NULL WHERE id = ?", (approval_id,))

    async def unfinished_approvals(self) -> list[tuple[ApprovalRecord, str | None]]:
        """At start-up: approvals still pending, and decided ones whose turn the restart cut
        (their position is still stored), each with its stored position; oldest first."""
        rows = await self._fetch(
            f"SELECT {APPROVAL_COLUMNS}, resume_state FROM approvals"
            " WHERE status = ? OR resume_state IS NOT NULL ORDER BY id",
            (PENDING,),
        )
        return [(approval_record(row), row["resume_state"]) for row in rows]
