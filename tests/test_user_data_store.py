"""Erasure and retention at the store, on a real file, with the clock injected: what goes, what
stays, and that no cell of any table names the erased user afterwards."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.events import Usage
from bot.core.state import ConversationKey, ConversationState
from bot.store.authors import REMOVED_TURN
from bot.store.queries import timestamp
from bot.store.records import TurnRecord
from bot.store.sqlite import Store

GONE = 731842907316154409  # the user who asks to be forgotten (a real-looking snowflake)
STAYS = 882311205938401722
GUILD, CHANNEL, SHARED_CHANNEL = 1001, 2002, 3003
WORDS = "my-private-words-zebra"
OTHER_WORDS = "someone-else-speaks-okapi"

MINE = ConversationKey(guild_id=GUILD, channel_id=CHANNEL, user_id=GONE)
THEIRS = ConversationKey(guild_id=GUILD, channel_id=CHANNEL, user_id=STAYS)
SHARED = ConversationKey(guild_id=GUILD, channel_id=SHARED_CHANNEL)


def cells(path: Path) -> list[tuple[str, str, str]]:
    """Every cell of every table as (table, column, text); blobs read as latin-1."""
    out = []
    with closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            for row in cursor:
                for name, value in zip(names, row, strict=True):
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    out.append((table, name, text))
    return out


def naming(path: Path, *needles: str) -> list[tuple[str, str, str]]:
    return [c for c in cells(path) if any(n in c[2] for n in needles)]


def file_bytes(path: Path) -> bytes:
    """The database file and its write-ahead log, as a disk search would see them."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def query(path: Path, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql, parameters).fetchall()


def turn(user_id: int, tokens: int = 10) -> TurnRecord:
    usage = Usage(input_tokens=tokens, output_tokens=tokens)
    return TurnRecord(user_id=user_id, model="m", usage=usage, duration_s=0.1, cost_usd=0.5)


def history(*messages: tuple[str, str]) -> ConversationState:
    return ConversationState(
        backend="chat", history=tuple({"role": r, "content": c} for r, c in messages)
    )


def age(path: Path, table: str, column: str, when: datetime, where: str = "1") -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (timestamp(when),))
        db.commit()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    async with Store.open(db_path) as opened:
        yield opened


async def a_busy_database(store: Store, db_path: Path, now: datetime) -> None:
    """Both users in their own conversations, in one shared conversation, in approvals both ways,
    a grant, a /system prompt, and usage two days old and an hour old."""
    await store.save_turn(MINE, history(("user", WORDS), ("assistant", "ok")), turn(GONE))
    await store.save_turn(THEIRS, history(("user", OTHER_WORDS), ("assistant", "ok")), turn(STAYS))
    age(db_path, "usage", "created_at", now - timedelta(days=2))  # both users' first turns
    shared = [("user", f"{WORDS} in public"), ("assistant", "answer one")]
    await store.save_turn(SHARED, history(*shared), turn(GONE, tokens=7))
    shared += [("user", f"<@{GONE}> said it, {OTHER_WORDS}"), ("assistant", "answer two")]
    await store.save_turn(SHARED, history(*shared), turn(STAYS))
    asked = await store.create_approval(
        key=MINE, call_id="c1", server="s", tool="t", arguments={"q": WORDS}, requester_id=GONE
    )
    await store.decide_approval(asked, status="approved", decided_by=GONE)
    decided = await store.create_approval(
        key=THEIRS, call_id="c2", server="s", tool="t", arguments={"q": 1}, requester_id=STAYS
    )
    await store.decide_approval(decided, status="denied", decided_by=GONE, reason=WORDS)
    await store.grant_tool(THEIRS, "s.t", granted_by=GONE)
    await store.grant_tool(THEIRS, "s.u", granted_by=STAYS)
    await store.set_channel_prompt(GUILD, CHANNEL, f"{WORDS} as a prompt", set_by=GONE)


async def test_forget_leaves_no_cell_naming_the_user_and_keeps_everyone_else(
    store: Store, db_path: Path
) -> None:
    now = datetime.now(UTC)
    await a_busy_database(store, db_path, now)
    before_day = await store.tokens_used_since(GONE, now - timedelta(days=1))
    channel_month = await store.channel_usage_since(GUILD, SHARED_CHANNEL, now - timedelta(30))
    assert naming(db_path, str(GONE), WORDS)  # the search finds them before

    erased = await store.forget_user(GONE, now=now)

    assert naming(db_path, str(GONE), WORDS) == []
    assert erased.conversations == 1 and erased.shared_turns == 1 and erased.decisions == 1
    # Their own conversation is gone; the other user's stays whole.
    assert await store.load_conversation(MINE) is None
    assert await store.load_conversation(THEIRS) == history(
        ("user", OTHER_WORDS), ("assistant", "ok")
    )
    # Shared: their turn reads as removed; the answers and the other person's turn stay.
    shared = await store.load_conversation(SHARED)
    assert shared is not None
    assert [m["content"] for m in shared.history] == [
        REMOVED_TURN,
        "answer one",
        f"<@[removed]> said it, {OTHER_WORDS}",
        "answer two",
    ]
    # The decision they made for someone else stays, without their name or their words.
    rows = query(db_path, "SELECT requester_id, status, decided_by, reason FROM approvals")
    assert rows == [(STAYS, "denied", "[removed]", None)]
    assert await store.granted_tools(THEIRS) == {"s.u"}
    assert await store.channel_prompts([CHANNEL]) == {}
    # The last day still counts against their daily allowance; the channel totals hold.
    assert before_day == 7 * 2
    assert await store.tokens_used_since(GONE, now - timedelta(days=1)) == before_day
    assert (
        await store.channel_usage_since(GUILD, SHARED_CHANNEL, now - timedelta(30)) == channel_month
    )
    # The other user's usage is untouched, the folded day holds the rest of the channel's.
    assert await store.tokens_used_since(STAYS, now - timedelta(days=3)) == 40
    month = await store.channel_usage_since(GUILD, CHANNEL, now - timedelta(30))
    assert month.turns == 2 and month.input_tokens == 20 and month.cost_usd == 1.0


async def test_a_forgotten_users_next_turns_in_a_shared_conversation_are_theirs_again(
    store: Store, db_path: Path
) -> None:
    """After /forget a user may speak again; a second /forget must find those new turns."""
    await store.save_turn(SHARED, history(("user", "first"), ("assistant", "a")), turn(GONE))
    await store.forget_user(GONE)
    again = history(
        (("user", REMOVED_TURN)), ("assistant", "a"), ("user", WORDS), ("assistant", "b")
    )
    await store.save_turn(SHARED, again, turn(GONE))
    await store.forget_user(GONE)
    assert naming(db_path, str(GONE), WORDS) == []


async def test_turns_trimmed_out_of_a_shared_history_drop_their_author_rows(
    store: Store, db_path: Path
) -> None:
    await store.save_turn(SHARED, history(("user", WORDS), ("assistant", "a")), turn(GONE))
    await store.save_turn(SHARED, history(("user", "later"), ("assistant", "b")), turn(STAYS))
    assert query(db_path, "SELECT user_id FROM turn_authors") == [(STAYS,)]


async def test_retention_deletes_what_is_older_than_n_days_and_nothing_else(
    store: Store, db_path: Path
) -> None:
    now = datetime(2030, 6, 15, 12, tzinfo=UTC)
    await a_busy_database(store, db_path, now)
    old = now - timedelta(days=8)
    # Their own conversation, its approval and the first turns' usage are 8 days old; the
    # other user's conversation and the shared one were used yesterday.
    age(db_path, "conversations", "updated_at", old, f"key = '{MINE}'")
    age(db_path, "conversations", "updated_at", now - timedelta(days=1), f"key != '{MINE}'")
    age(db_path, "approvals", "created_at", old, f"requester_id = {GONE}")
    age(db_path, "approvals", "created_at", now - timedelta(days=6), f"requester_id = {STAYS}")
    age(db_path, "usage", "created_at", old, "id <= 2")
    age(db_path, "usage", "created_at", now - timedelta(hours=1), "id > 2")
    channel_before = await store.channel_usage_since(GUILD, CHANNEL, now - timedelta(days=30))

    expired = await store.expire(7, now=now)

    assert (expired.conversations, expired.approvals, expired.usage) == (1, 1, 2)
    assert await store.load_conversation(MINE) is None
    assert await store.load_conversation(THEIRS) is not None
    assert await store.load_conversation(SHARED) is not None
    assert [r[0] for r in query(db_path, "SELECT requester_id FROM approvals")] == [STAYS]
    assert query(db_path, "SELECT COUNT(*) FROM usage") == [(2,)]
    # Their own totals cover what retention keeps; the channel's still count the folded days.
    assert await store.tokens_used_since(GONE, now - timedelta(days=30)) == 14
    assert (
        await store.channel_usage_since(GUILD, CHANNEL, now - timedelta(days=30)) == channel_before
    )
    # Nothing left to do the next day at the same cutoff; off (None) deletes nothing.
    assert not await store.expire(7, now=now)
    assert not await store.expire(None, now=now + timedelta(days=365))
    assert await store.load_conversation(THEIRS) is not None


async def test_a_forgotten_users_last_day_ages_out_into_the_daily_totals(
    store: Store, db_path: Path
) -> None:
    now = datetime.now(UTC)
    await store.save_turn(MINE, history(("user", WORDS)), turn(GONE))
    await store.forget_user(GONE, now=now)
    assert await store.tokens_used_since(GONE, now - timedelta(days=1)) == 20

    await store.expire(None, now=now + timedelta(hours=25))

    assert query(db_path, "SELECT COUNT(*) FROM usage") == [(0,)]
    assert query(db_path, "SELECT turns, input_tokens FROM usage_daily") == [(1, 10)]


async def test_the_erased_words_are_left_neither_in_the_file_nor_in_its_wal(
    store: Store, db_path: Path
) -> None:
    # Rows that stay share the page: without secure_delete the deleted one's bytes stay in it.
    await store.save_turn(THEIRS, history(("user", OTHER_WORDS)), turn(STAYS))
    await store.save_turn(MINE, history(("user", WORDS * 20)), turn(GONE))
    await store.save_turn(SHARED, history(("user", OTHER_WORDS)), turn(STAYS))
    await store.forget_user(GONE)
    assert WORDS.encode() not in file_bytes(db_path)
