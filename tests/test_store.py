"""The SQLite store against a real file: migrations, atomic turns, concurrency, approvals, resets."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.core.events import Usage
from bot.core.state import ConversationKey, ConversationState
from bot.store.migrations import MIGRATIONS, Migration
from bot.store.records import TurnRecord
from bot.store.sqlite import Store

KEY = ConversationKey(guild_id=1, channel_id=10, user_id=100)


def query(path: Path, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Look at the file through a separate connection: only committed data is visible there."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql, parameters).fetchall()


def state(*texts: str, model: str | None = None) -> ConversationState:
    history = tuple({"role": "user", "content": text} for text in texts)
    return ConversationState(backend="chat", history=history, model=model)


def turn(user_id: int = 100, input_tokens: int = 10, output_tokens: int = 5) -> TurnRecord:
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return TurnRecord(user_id=user_id, model="gpt-test", usage=usage, duration_s=0.5)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    # A directory that does not exist yet: opening must create it.
    return tmp_path / "data" / "nested" / "bot.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    async with Store.open(db_path) as opened:
        yield opened


# -- migrations ---------------------------------------------------------------------------------


async def test_migrations_are_applied_once_in_order_and_reopening_keeps_data(db_path: Path):
    async with Store.open(db_path) as store:
        assert await store.migrate() == []  # open already migrated
        await store.save_turn(KEY, state("hello"), turn())

    names = [migration.name for migration in MIGRATIONS]
    assert [
        row[0] for row in query(db_path, "SELECT name FROM schema_migrations ORDER BY rowid")
    ] == names

    async with Store.open(db_path) as store:
        assert await store.migrate() == []
        assert await store.migrate() == []
        assert await store.load_conversation(KEY) == state("hello")
    assert query(db_path, "SELECT COUNT(*) FROM schema_migrations") == [(len(MIGRATIONS),)]
    assert query(db_path, "SELECT COUNT(*) FROM usage") == [(1,)]


async def test_migrate_applies_only_what_is_missing(db_path: Path):
    async with Store.open(db_path, migrations=MIGRATIONS[:2]) as store:
        tables = {row[0] for row in query(db_path, "SELECT name FROM sqlite_master")}
        assert {"conversations", "approvals"} <= tables
        assert "usage" not in tables
        await store.set_conversation_model(KEY, "kept")

    async with Store.open(db_path) as store:
        # The older migrations were not re-run (that would fail: CREATE TABLE without IF NOT
        # EXISTS), and the data written under the older schema is still there.
        assert (await store.load_conversation(KEY)) == ConversationState(model="kept")
        await store.save_turn(KEY, state("now with usage"), turn())
    assert query(db_path, "SELECT COUNT(*) FROM schema_migrations") == [(len(MIGRATIONS),)]


async def test_migrate_returns_the_names_it_applied(db_path: Path):
    async with Store.open(db_path) as store:
        # Make the file look like it predates the usage migration.
        last = "m004_usage"
        assert last in [m.name for m in MIGRATIONS]
        with closing(sqlite3.connect(db_path)) as raw, raw:
            raw.execute("DROP TABLE usage")
            raw.execute("DELETE FROM schema_migrations WHERE name = ?", (last,))
        assert await store.migrate() == [last]
        assert await store.migrate() == []


async def test_failed_migration_leaves_nothing_behind(db_path: Path):
    broken = Migration("m999_broken", ("CREATE TABLE half_done (x INTEGER)", "NOT SQL AT ALL"))
    with pytest.raises(sqlite3.OperationalError):
        async with Store.open(db_path, migrations=(*MIGRATIONS, broken)):
            pass
    tables = {row[0] for row in query(db_path, "SELECT name FROM sqlite_master")}
    assert "half_done" not in tables
    assert "usage" in tables  # earlier migrations committed separately and stay
    assert query(db_path, "SELECT COUNT(*) FROM schema_migrations WHERE name = 'm999_broken'") == [
        (0,)
    ]


async def test_older_code_refuses_a_newer_database(db_path: Path):
    async with Store.open(db_path):
        pass
    with pytest.raises(RuntimeError, match="does not know"):
        async with Store.open(db_path, migrations=MIGRATIONS[:1]):
            pass


async def test_connection_settings(store: Store, db_path: Path):
    # WAL is a property of the file: any other connection sees it.
    assert query(db_path, "PRAGMA journal_mode") == [("wal",)]

    async def pragma(name: str) -> Any:
        # These pragmas are per connection and have no outside view: ask the store's own.
        rows = list(await store._db.execute_fetchall(f"PRAGMA {name}"))
        return rows[0][0]

    assert await pragma("foreign_keys") == 1
    assert await pragma("busy_timeout") == 5000
    assert await pragma("synchronous") == 1  # NORMAL


# -- turns --------------------------------------------------------------------------------------


async def test_save_and_load_round_trip(store: Store):
    assert await store.load_conversation(KEY) is None
    saved = ConversationState(
        backend="responses",
        history=({"role": "user", "content": [{"type": "input_text", "text": "héllo"}]},),
        previous_response_id="resp_1",
        model="gpt-x",
    )
    await store.save_turn(KEY, saved, turn())
    assert await store.load_conversation(KEY) == saved


async def test_fifty_concurrent_turns_lose_nothing(store: Store, db_path: Path):
    distinct = [ConversationKey(guild_id=1, channel_id=10, user_id=n) for n in range(25)]
    shared = [ConversationKey(guild_id=1, channel_id=20 + n, user_id=0) for n in range(5)]
    writes: list[tuple[ConversationKey, ConversationState, TurnRecord]] = []
    for n, key in enumerate(distinct):
        writes.append((key, state(f"distinct {n}"), turn(user_id=n, input_tokens=n)))
    for n in range(25):
        key = shared[n % 5]
        writes.append((key, state(f"shared {n}"), turn(user_id=1000 + n, input_tokens=n)))

    async def reader(key: ConversationKey) -> None:
        # Reads interleaved with the writes must neither fail nor disturb a transaction.
        await store.load_conversation(key)
        await store.granted_tools(key)

    await asyncio.gather(
        *(store.save_turn(*write) for write in writes),
        *(reader(key) for key in shared),
    )

    assert query(db_path, "SELECT COUNT(*), SUM(input_tokens) FROM usage") == [
        (50, 2 * sum(range(25)))
    ]
    assert query(db_path, "SELECT COUNT(*) FROM conversations") == [(30,)]
    for n, key in enumerate(distinct):
        assert await store.load_conversation(key) == state(f"distinct {n}")
    for key in shared:
        candidates = [written for k, written, _ in writes if k == key]
        assert await store.load_conversation(key) in candidates


async def test_usage_that_breaks_a_constraint_rolls_back_the_whole_turn(
    store: Store, db_path: Path
):
    before = state("first")
    await store.save_turn(KEY, before, turn())

    # The conversation upsert runs first and succeeds; the usage insert then violates its CHECK.
    with pytest.raises(sqlite3.IntegrityError):
        await store.save_turn(KEY, state("first", "second"), turn(input_tokens=-1))

    assert await store.load_conversation(KEY) == before
    assert query(db_path, "SELECT COUNT(*) FROM usage") == [(1,)]
    assert query(db_path, "SELECT history FROM conversations") == [
        ('[{"role":"user","content":"first"}]',)
    ]

    # A conversation that did not exist is not created by a failed turn either.
    other = ConversationKey(guild_id=1, channel_id=10, user_id=200)
    with pytest.raises(sqlite3.IntegrityError):
        await store.save_turn(other, state("x"), turn(output_tokens=-5))
    assert await store.load_conversation(other) is None

    # The connection is not left inside a transaction: the next turn commits normally.
    await store.save_turn(KEY, state("first", "third"), turn())
    assert query(db_path, "SELECT COUNT(*) FROM usage") == [(2,)]
    assert await store.load_conversation(KEY) == state("first", "third")


def stall_before_grants_delete(store: Store, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make /reset's transaction hang between its two DELETEs; the event is set once it does."""
    execute = store._db.execute
    stalled = asyncio.Event()

    async def stall_on_grants(sql: str, parameters: Any = None) -> Any:
        if sql.startswith("DELETE FROM tool_grants"):
            stalled.set()
            await asyncio.Event().wait()
        return await execute(sql, parameters)

    monkeypatch.setattr(store._db, "execute", stall_on_grants)
    return stalled


async def test_a_transaction_cancelled_half_way_rolls_back(
    store: Store, db_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A multi-statement transaction awaited step by step (here /reset's) that is cancelled
    between its statements leaves nothing half done and the connection usable."""
    before = state("first")
    await store.save_turn(KEY, before, turn())
    await store.grant_tool(KEY, "gated__run", granted_by=7)
    reached_grants = stall_before_grants_delete(store, monkeypatch)
    task = asyncio.create_task(store.reset_conversation(KEY))
    await reached_grants.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.undo()

    assert await store.load_conversation(KEY) == before
    assert await store.granted_tools(KEY) == {"gated__run"}
    await store.save_turn(KEY, state("first", "third"), turn())
    assert query(db_path, "SELECT COUNT(*) FROM usage") == [(2,)]


@pytest.mark.parametrize("bad_item", [object(), float("nan")], ids=["object", "nan"])
async def test_history_that_is_not_json_changes_nothing(store: Store, db_path: Path, bad_item: Any):
    before = state("first")
    await store.save_turn(KEY, before, turn())
    bad = ConversationState(backend="chat", history=({"role": "user", "content": bad_item},))
    with pytest.raises((TypeError, ValueError)):
        await store.save_turn(KEY, bad, turn())
    assert await store.load_conversation(KEY) == before
    assert query(db_path, "SELECT COUNT(*) FROM usage") == [(1,)]


async def test_a_lone_surrogate_in_model_text_still_saves(store: Store):
    odd = ConversationState(
        backend="chat", history=({"role": "assistant", "content": "hi \ud83d"},)
    )
    await store.save_turn(KEY, odd, turn())
    assert await store.load_conversation(KEY) == odd


async def test_usage_details_and_usage_without_state(store: Store, db_path: Path):
    spent = TurnRecord(
        user_id=7,
        model="m",
        usage=Usage(input_tokens=10, output_tokens=5, cached_input_tokens=4, reasoning_tokens=3),
        duration_s=0.5,
    )
    await store.save_usage(KEY, spent)
    assert await store.load_conversation(KEY) is None
    assert query(
        db_path,
        "SELECT input_tokens, cached_input_tokens, output_tokens, reasoning_tokens FROM usage",
    ) == [(10, 4, 5, 3)]
    assert await store.tokens_used_since(7, datetime.now(UTC) - timedelta(minutes=1)) == 15


async def test_set_conversation_model(store: Store):
    await store.set_conversation_model(KEY, "picked-early")  # before any turn
    assert await store.load_conversation(KEY) == ConversationState(model="picked-early")

    await store.save_turn(KEY, state("hi", model="picked-early"), turn())
    await store.set_conversation_model(KEY, "other")
    assert await store.load_conversation(KEY) == state("hi", model="other")
    await store.set_conversation_model(KEY, None)
    assert await store.load_conversation(KEY) == state("hi")


# -- resets and grants --------------------------------------------------------------------------


async def test_reset_conversation_clears_grants(store: Store):
    other = ConversationKey(guild_id=1, channel_id=10, user_id=200)
    await store.save_turn(KEY, state("hi"), turn())
    await store.grant_tool(KEY, "time.now", granted_by=100)
    await store.grant_tool(KEY, "time.now", granted_by=999)  # granting twice is harmless
    await store.grant_tool(KEY, "fs.read", granted_by=100)
    await store.grant_tool(other, "time.now", granted_by=200)
    assert await store.granted_tools(KEY) == {"time.now", "fs.read"}

    assert await store.reset_conversation(KEY) is True
    assert await store.load_conversation(KEY) is None
    assert await store.granted_tools(KEY) == set()
    assert await store.granted_tools(other) == {"time.now"}
    assert await store.reset_conversation(KEY) is False

    # Grants given before the first saved turn (no conversation row yet) are cleared too.
    await store.grant_tool(KEY, "time.now", granted_by=100)
    assert await store.reset_conversation(KEY) is True
    assert await store.granted_tools(KEY) == set()


async def test_reset_channel_removes_every_user_in_that_channel_only(store: Store):
    in_channel = [ConversationKey(guild_id=1, channel_id=1, user_id=u) for u in (0, 7, 8)]
    # Same guild, channel id sharing a text prefix; and same channel id in another guild.
    elsewhere = [
        ConversationKey(guild_id=1, channel_id=12, user_id=7),
        ConversationKey(guild_id=2, channel_id=1, user_id=7),
    ]
    for key in in_channel + elsewhere:
        await store.save_turn(key, state("hi"), turn())
        await store.grant_tool(key, "time.now", granted_by=7)
    lone_grant = ConversationKey(guild_id=1, channel_id=1, user_id=9)  # no conversation row
    await store.grant_tool(lone_grant, "time.now", granted_by=9)

    assert await store.reset_channel(1, 1) == 3
    for key in [*in_channel, lone_grant]:
        assert await store.load_conversation(key) is None
        assert await store.granted_tools(key) == set()
    for key in elsewhere:
        assert await store.load_conversation(key) == state("hi")
        assert await store.granted_tools(key) == {"time.now"}
    assert await store.reset_channel(1, 1) == 0


# -- approvals ----------------------------------------------------------------------------------


async def new_approval(store: Store, call_id: str = "call_1") -> int:
    return await store.create_approval(
        key=KEY,
        call_id=call_id,
        server="time",
        tool="now",
        arguments={"tz": "Europe/Paris", "nested": [1, {"a": None}]},
        requester_id=100,
    )


async def test_approval_round_trip(store: Store):
    approval_id = await new_approval(store)  # before any turn of the conversation was saved
    record = await store.get_approval(approval_id)
    assert record is not None
    assert (record.id, record.key, record.call_id, record.server, record.tool) == (
        approval_id,
        KEY,
        "call_1",
        "time",
        "now",
    )
    assert record.arguments == {"tz": "Europe/Paris", "nested": [1, {"a": None}]}
    assert (record.status, record.decided_by, record.decided_at) == ("pending", None, None)
    assert (record.channel_id, record.message_id) == (None, None)
    assert record.created_at.tzinfo is not None

    await store.attach_approval_message(approval_id, channel_id=10, message_id=555)
    record = await store.get_approval(approval_id)
    assert record is not None and (record.channel_id, record.message_id) == (10, 555)
    assert await store.get_approval(approval_id + 1000) is None
    with pytest.raises(LookupError):
        await store.attach_approval_message(approval_id + 1000, channel_id=1, message_id=1)


async def test_decide_approval_is_compare_and_set(store: Store):
    approval_id = await new_approval(store)
    assert await store.decide_approval(approval_id, status="approved", decided_by=100) is True
    assert await store.decide_approval(approval_id, status="denied", decided_by=200) is False
    assert await store.decide_approval(approval_id, status="timeout", decided_by=None) is False
    record = await store.get_approval(approval_id)
    assert record is not None
    assert (record.status, record.decided_by) == ("approved", 100)
    assert record.decided_at is not None and record.decided_at >= record.created_at

    assert await store.decide_approval(999_999, status="denied", decided_by=1) is False
    with pytest.raises(ValueError):
        await store.decide_approval(approval_id, status="pending", decided_by=1)


async def test_racing_decisions_have_exactly_one_winner(store: Store):
    approval_id = await new_approval(store)
    statuses = ["approved", "denied", "always", "timeout"] * 5
    results = await asyncio.gather(
        *(
            store.decide_approval(approval_id, status=s, decided_by=n)
            for n, s in enumerate(statuses)
        )
    )
    assert results.count(True) == 1
    winner = results.index(True)
    record = await store.get_approval(approval_id)
    assert record is not None
    assert (record.status, record.decided_by) == (statuses[winner], winner)


# -- usage --------------------------------------------------------------------------------------


async def test_tokens_used_since(store: Store):
    start = datetime.now(UTC) - timedelta(seconds=1)
    await store.save_turn(KEY, state("a"), turn(user_id=100, input_tokens=10, output_tokens=5))
    # A channel-wide conversation: usage belongs to who asked, not to the key's user (0).
    channel_key = ConversationKey(guild_id=1, channel_id=10)
    await store.save_turn(
        channel_key, state("b"), turn(user_id=100, input_tokens=1, output_tokens=2)
    )
    await store.save_turn(
        channel_key, state("c"), turn(user_id=200, input_tokens=50, output_tokens=50)
    )

    assert await store.tokens_used_since(100, start) == 18
    assert await store.tokens_used_since(200, start) == 100
    assert await store.tokens_used_since(300, start) == 0
    assert await store.tokens_used_since(100, datetime.now(UTC) + timedelta(minutes=1)) == 0
    # Another time zone means the same instant.
    plus_two = timezone(timedelta(hours=2))
    assert await store.tokens_used_since(100, start.astimezone(plus_two)) == 18
    with pytest.raises(ValueError):
        await store.tokens_used_since(100, datetime.now())

    # /reset must not refund the quota.
    await store.reset_channel(1, 10)
    assert await store.tokens_used_since(100, start) == 18


async def test_reads_do_not_queue_behind_a_transaction(
    store: Store, monkeypatch: pytest.MonkeyPatch
):
    """Loading a conversation never waits for another conversation's write: with hundreds of
    answers streaming, each queued read cost an event-loop turn and turns started a second late."""
    other = ConversationKey(guild_id=1, channel_id=10, user_id=300)
    await store.save_turn(KEY, state("first"), turn())
    await store.save_turn(other, state("other"), turn())
    stalled = stall_before_grants_delete(store, monkeypatch)
    writer = asyncio.create_task(store.reset_conversation(KEY))
    await stalled.wait()
    try:
        # Bounded only so that a regression fails instead of hanging the suite.
        loaded = await asyncio.wait_for(store.load_conversation(other), timeout=10)
        assert loaded == state("other")
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def test_a_message_is_taken_once_and_a_cut_question_keeps_its_reply_parts(store: Store):
    """note_handled says whether this caller took the message (a catch-up and the live event
    meet on one only once); a cut question comes back with the parts of its reply, once."""
    assert await store.note_handled(10, 1001) is True
    assert await store.note_handled(10, 1001) is False
    assert await store.handled_among([1001, 1002]) == {1001}
    await store.remember_cut_question(10, 1001, (2001, 2002))
    await store.remember_cut_question(11, 1003)
    assert await store.take_cut_questions(3600) == [(10, 1001, (2001, 2002)), (11, 1003, ())]
    assert await store.take_cut_questions(3600) == []
