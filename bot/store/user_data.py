"""The store's side of a user's rights over their data: erasure, retention, and what /status says."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.core.state import ConversationKey
from bot.store.erase import Erased, erase_user
from bot.store.queries import Queries
from bot.store.retention import Expired, expire, fold_forgotten_usage

log = logging.getLogger(__name__)


class UserDataQueries(Queries):
    async def forget_user(self, user_id: int, *, now: datetime | None = None) -> Erased:
        """Erase what the database holds about `user_id`, all or nothing (see erase.py)."""
        moment = now or datetime.now(UTC)
        async with self._transaction() as db:
            erased = await erase_user(db, user_id, secret=self.install_secret(), now=moment)
        await self._checkpoint()
        return erased

    async def expire(self, days: int | None, *, now: datetime | None = None) -> Expired:
        """storage.retention_days (None: keep) and the day a forgotten user's usage is kept."""
        moment = now or datetime.now(UTC)
        async with self._transaction() as db:
            await fold_forgotten_usage(db, moment)
            expired = await expire(db, days, moment) if days is not None else Expired()
        if expired:
            await self._checkpoint()
        return expired

    async def conversation_updated_at(self, key: ConversationKey) -> datetime | None:
        """When the conversation last changed: retention counts its idle days from here."""
        rows = await self._fetch("SELECT updated_at FROM conversations WHERE key = ?", (str(key),))
        return datetime.fromisoformat(rows[0]["updated_at"]) if rows else None

    async def users_in_shared_conversations(self, user_id: int) -> list[ConversationKey]:
        """The shared conversations holding this user's turns (held still while they go)."""
        rows = await self._fetch(
            "SELECT DISTINCT conversation_key FROM turn_authors WHERE user_id = ?", (user_id,)
        )
        return [ConversationKey.parse(row["conversation_key"]) for row in rows]

    async def _checkpoint(self) -> None:
        # secure_delete zeroes what the main file frees; the WAL still holds the old pages until
        # a checkpoint copies the new ones over and truncates it. Readers in another process
        # can keep it from finishing now; the next automatic checkpoint completes it.
        cursor = await self._write("PRAGMA wal_checkpoint(TRUNCATE)")
        row = await cursor.fetchone()
        if row is not None and row[0]:
            log.info("the write-ahead log is still in use; it is emptied at the next checkpoint")
