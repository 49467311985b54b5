"""The bot's durable memory: conversations, approvals, usage and /system prompts in one SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.state import ConversationKey, ConversationState
from bot.store.approval_resumes import (
    APPROVAL_COLUMNS,
    DROP_RESUME,
    ApprovalResumeQueries,
    approval_record,
)
from bot.store.authors import author_statements
from bot.store.channel_prompts import ChannelPromptQueries
from bot.store.cut_questions import CutQuestionQueries
from bot.store.handled import HandledQueries
from bot.store.install import InstallQueries
from bot.store.migrations import MIGRATIONS, Migration
from bot.store.open_questions import OpenQuestionQueries
from bot.store.queries import timestamp as _timestamp
from bot.store.records import DECISIONS, PENDING, ApprovalRecord, TurnRecord
from bot.store.turns import Statement, conversation_upsert, run_transaction
from bot.store.usage import UsageQueries, insert_usage, usage_row
from bot.store.user_data import UserDataQueries

log = logging.getLogger(__name__)

# busy_timeout matters only when another process (a CLI, a second bot) holds the file;
# NORMAL is durable enough under WAL: a power cut may lose the last commits, never corrupt.
_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    # Deleted rows are overwritten, not left in free pages: /forget and retention mean it.
    "PRAGMA secure_delete = ON",
)


def _now() -> str:
    return _timestamp(datetime.now(UTC))


def _dump_json(value: Any) -> str:
    # allow_nan=False: NaN/Infinity are not JSON and would be unreadable by other tools.
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate from a model's output cannot be stored as UTF-8; escaped it can, and
        # the answer the user already saw is not lost at the final save.
        text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text


class Store(
    ApprovalResumeQueries,
    UsageQueries,
    ChannelPromptQueries,
    InstallQueries,
    UserDataQueries,
    OpenQuestionQueries,
    CutQuestionQueries,
    HandledQueries,
):
    """Every query the bot makes, over one shared aiosqlite connection.

    Create it with `async with Store.open(path) as store:`; the schema is migrated on the way in.
    """

    def __init__(self, db: aiosqlite.Connection, migrations: Sequence[Migration]) -> None:
        self._db = db
        self._migrations = tuple(migrations)
        # The connection is shared by concurrent tasks, and SQLite transactions belong to the
        # connection, not the task: a statement sent while another task is between BEGIN and
        # COMMIT would join (and could be rolled back with) that task's transaction, and a second
        # BEGIN would fail. So every use of the connection, reads included, holds this lock.
        self._lock = asyncio.Lock()

    @classmethod
    def open(
        cls, path: str | Path, *, migrations: Sequence[Migration] = MIGRATIONS
    ) -> AbstractAsyncContextManager[Store]:
        """Connect, apply pending migrations, and close on exit. `migrations` exists for tests."""
        return cls._open(Path(path), migrations)

    @classmethod
    @asynccontextmanager
    async def _open(cls, path: Path, migrations: Sequence[Migration]) -> AsyncIterator[Store]:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None stops sqlite3 from opening transactions behind our back, so the
        # explicit BEGIN IMMEDIATE / COMMIT / ROLLBACK below are the only transaction boundaries.
        db = await aiosqlite.connect(path, isolation_level=None)
        store = cls(db, migrations)
        try:
            db.row_factory = sqlite3.Row
            for pragma in _PRAGMAS:
                rows = list(await db.execute_fetchall(pragma))
                if pragma.startswith("PRAGMA journal_mode") and rows[0][0] != "wal":
                    log.warning("SQLite journal mode is %s, not WAL, for %s", rows[0][0], path)
            await store.migrate()
            await store._load_install_secret()
            yield store
        finally:
            await store.close()

    async def close(self) -> None:
        # Under the lock so a transaction in flight finishes before the connection goes away.
        async with self._lock:
            await self._db.close()

    # -- plumbing -------------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the body as one all-or-nothing write transaction."""
        async with self._lock:
            # IMMEDIATE takes the write lock up front, so a busy database fails (or waits) here
            # rather than half-way through, when a read lock cannot be upgraded.
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException:
                # BaseException too: a task cancelled mid-transaction must not leave it open for
                # the next task to commit. aiosqlite runs statements in order on its thread, so
                # this ROLLBACK lands after whatever statement the cancellation interrupted.
                if self._db.in_transaction:
                    # If the interrupted statement was the COMMIT itself, it may have finished
                    # by the time ROLLBACK runs; "no transaction is active" is then harmless.
                    with contextlib.suppress(sqlite3.OperationalError):
                        await self._db.execute("ROLLBACK")
                raise

    async def _transaction_in_one_step(self, statements: list[Statement]) -> None:
        """Run statements as one all-or-nothing transaction in a single job on aiosqlite's
        thread. Every turn ends with a save, and the final text waits for it: awaiting BEGIN,
        each statement and COMMIT one by one costs an event-loop turn each (tens of ms when
        hundreds of answers stream), and under the lock the saves queued for a second. aiosqlite
        has no public call for this; `_execute` and `_conn` are its own plumbing for it, and
        tests/test_store.py holds the all-or-nothing behaviour."""
        async with self._lock:
            connection = self._db._conn
            await self._db._execute(run_transaction, connection, statements)

    async def _fetch(self, sql: str, parameters: Iterable[Any] = ()) -> list[sqlite3.Row]:
        # No lock: aiosqlite runs each call whole on its one thread, so a read cannot split a
        # write. Taking the lock made reads queue one event-loop turn each behind one another;
        # with 200 answers streaming, a turn waited a second just to load its conversation.
        # (A read during another key's save may see that save before its COMMIT; the keys differ,
        # and a turn's own key is never saved while it loads.)
        return list(await self._db.execute_fetchall(sql, parameters))

    async def _write(self, sql: str, parameters: Iterable[Any] = ()) -> aiosqlite.Cursor:
        # A lone statement is atomic by itself in autocommit mode; no BEGIN/COMMIT needed.
        async with self._lock:
            return await self._db.execute(sql, parameters)

    # -- migrations -----------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order; return the names applied (empty when up to date)."""
        names = [migration.name for migration in self._migrations]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate migration names in {names}")
        await self._write(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row["name"] for row in await self._fetch("SELECT name FROM schema_migrations")}
        if unknown := done - set(names):
            # A newer bot migrated this file; running older code on it could corrupt data.
            raise RuntimeError(
                f"database has migrations this code does not know: {sorted(unknown)}"
            )
        applied: list[str] = []
        for migration in self._migrations:
            if migration.name in done:
                continue
            async with self._transaction() as db:
                # Checked again inside the write lock: another process may have just applied it.
                already = await db.execute_fetchall(
                    "SELECT 1 FROM schema_migrations WHERE name = ?", (migration.name,)
                )
                if list(already):
                    continue
                for statement in migration.statements:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                    (migration.name, _now()),
                )
            applied.append(migration.name)
            log.info("applied migration %s", migration.name)
        return applied

    # -- conversations --------------------------------------------------------------------------

    async def load_conversation(self, key: ConversationKey) -> ConversationState | None:
        rows = await self._fetch(
            "SELECT backend, history, previous_response_id, model FROM conversations WHERE key = ?",
            (str(key),),
        )
        if not rows:
            return None
        row = rows[0]
        return ConversationState(
            backend=row["backend"],
            history=tuple(json.loads(row["history"])),
            previous_response_id=row["previous_response_id"],
            model=row["model"],
        )

    async def save_turn(
        self,
        key: ConversationKey,
        state: ConversationState,
        turn: TurnRecord,
        *,
        ends_resume: bool = False,
    ) -> None:
        """Store the conversation's new state and the turn's usage together, or neither;
        `ends_resume`: and forget the turn's stored position (it is over)."""
        # Encoded before the transaction: a history that is not JSON fails without touching
        # the database or holding the lock.
        history = _dump_json(list(state.history))
        now = _now()
        statements = [conversation_upsert(key, state, history, now), usage_row(key, turn, now)]
        if key.user_id == 0 and self._install_secret is not None:
            # A shared history has no names: remember whose question this turn was (/forget).
            secret = self._install_secret
            statements += author_statements(key, state.history, turn.user_id, secret, now)
        if ends_resume:
            statements.append((DROP_RESUME, (str(key),)))
        await self._transaction_in_one_step(statements)

    async def save_usage(
        self, key: ConversationKey, turn: TurnRecord, *, ends_resume: bool = False
    ) -> None:
        """Record what a turn cost when nothing of it is stored (it failed)."""
        async with self._transaction() as db:
            await insert_usage(db, key, turn, _now())
            if ends_resume:
                await db.execute(DROP_RESUME, (str(key),))

    async def reset_conversation(self, key: ConversationKey) -> bool:
        """Forget the conversation and its "always allow" grants; True if there was anything."""
        async with self._transaction() as db:
            conversations = await db.execute("DELETE FROM conversations WHERE key = ?", (str(key),))
            grants = await db.execute(
                "DELETE FROM tool_grants WHERE conversation_key = ?", (str(key),)
            )
            await db.execute("DELETE FROM turn_authors WHERE conversation_key = ?", (str(key),))
            return conversations.rowcount > 0 or grants.rowcount > 0

    async def reset_channel(self, guild_id: int, channel_id: int) -> int:
        """Forget every conversation in a channel, whoever it belongs to; return how many."""
        # Grants may exist for conversations that have no row yet, so they are matched by key:
        # every key in the channel starts with "guild:channel:", and ';' is the character after
        # ':', so this half-open range is exactly that prefix (and can use the primary key).
        low = f"{guild_id}:{channel_id}:"
        high = f"{guild_id}:{channel_id};"
        async with self._transaction() as db:
            deleted = await db.execute(
                "DELETE FROM conversations WHERE guild_id = ? AND channel_id = ?",
                (guild_id, channel_id),
            )
            for table in ("tool_grants", "turn_authors"):
                await db.execute(
                    f"DELETE FROM {table} WHERE conversation_key >= ? AND conversation_key < ?",
                    (low, high),
                )
            return deleted.rowcount

    async def set_conversation_model(self, key: ConversationKey, model: str | None) -> None:
        """Choose the model for this conversation (None: the configured default); keeps history."""
        now = _now()
        # Upsert: /model may come before the conversation's first turn.
        await self._write(
            "INSERT INTO conversations (key, guild_id, channel_id, user_id, model, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET model = excluded.model, updated_at = excluded.updated_at",
            (str(key), key.guild_id, key.channel_id, key.user_id, model, now, now),
        )

    # -- approvals ------------------------------------------------------------------------------

    async def attach_approval_message(
        self, approval_id: int, channel_id: int, message_id: int
    ) -> None:
        """Remember where the buttons went, so they can be disabled later."""
        cursor = await self._write(
            "UPDATE approvals SET channel_id = ?, message_id = ? WHERE id = ?",
            (channel_id, message_id, approval_id),
        )
        if cursor.rowcount == 0:
            raise LookupError(f"no approval with id {approval_id}")

    async def decide_approval(
        self,
        approval_id: int,
        *,
        status: str,
        decided_by: int | None,
        edited_arguments: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> bool:
        """Decide a pending approval. False if it was already decided (or does not exist).

        Compare-and-set in one statement, so of two racing clicks (or a click racing the
        timeout) exactly one wins.
        """
        if status not in DECISIONS:
            raise ValueError(f"unknown approval status {status!r}; expected one of {DECISIONS}")
        edited = _dump_json(edited_arguments) if edited_arguments is not None else None
        cursor = await self._write(
            "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?,"
            " edited_arguments = ?, reason = ? WHERE id = ? AND status = ?",
            (status, decided_by, _now(), edited, reason, approval_id, PENDING),
        )
        return cursor.rowcount == 1

    async def get_approval(self, approval_id: int) -> ApprovalRecord | None:
        rows = await self._fetch(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)
        )
        return approval_record(rows[0]) if rows else None

    async def grant_tool(self, key: ConversationKey, tool: str, granted_by: int) -> None:
        """Let `tool` run without asking in this conversation ("always allow"); first grant wins."""
        await self._write(
            "INSERT INTO tool_grants (conversation_key, tool, granted_by, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (conversation_key, tool) DO NOTHING",
            (str(key), tool, granted_by, _now()),
        )

    async def granted_tools(self, key: ConversationKey) -> set[str]:
        rows = await self._fetch(
            "SELECT tool FROM tool_grants WHERE conversation_key = ?", (str(key),)
        )
        return {row["tool"] for row in rows}
