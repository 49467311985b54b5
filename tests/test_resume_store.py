"""A turn's stored position (bot/core/resume.py) against a real SQLite file: written with its
approval row or not at all, one per conversation, gone when the turn ends; unreadable ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.core.resume import decode, encode
from bot.core.state import ConversationKey
from bot.store.sqlite import Store
from tests.test_store import query, state, turn

KEY = ConversationKey(guild_id=1, channel_id=10, user_id=100)
OTHER = ConversationKey(guild_id=1, channel_id=11, user_id=100)


def where(note: str) -> str:
    return encode({"backend": "chat", "model": "m", "calls": [], "round": 0, "note": note})


async def ask(store: Store, key: ConversationKey, tool: str, resume: str | None) -> int:
    return await store.create_approval(
        key=key,
        call_id=f"call-{tool}",
        server="gated",
        tool=tool,
        arguments={"note": tool},
        requester_id=100,
        resume=resume,
    )


def positions(path: Path) -> dict[int, str | None]:
    return dict(query(path, "SELECT id, resume_state FROM approvals ORDER BY id"))


async def test_a_position_goes_with_its_row_and_replaces_the_conversations_older_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.db"
    async with Store.open(path) as store:
        first = await ask(store, KEY, "record", where("first"))
        elsewhere = await ask(store, OTHER, "record", where("elsewhere"))
        unasked = await ask(store, KEY, "sampling", None)  # a question that stores none
        second = await ask(store, KEY, "echo", where("second"))
    stored = positions(path)
    assert stored[first] is None  # one turn at a time: the newest position is the turn's
    assert stored[elsewhere] == where("elsewhere")
    assert stored[unasked] is None
    assert stored[second] == where("second")


async def test_an_approval_that_cannot_be_written_leaves_the_older_position_as_it_was(
    tmp_path: Path,
) -> None:
    """The injected fault: the insert is refused after the older position was cleared in the
    same transaction; all of it rolls back, so no prompt is ever posted without its turn's
    position and the older one is not lost."""
    path = tmp_path / "bot.db"
    async with Store.open(path) as store:
        first = await ask(store, KEY, "record", where("first"))
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON approvals WHEN NEW.tool = 'boom'"
            " BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        )
    async with Store.open(path) as store:
        with pytest.raises(sqlite3.IntegrityError, match="injected fault"):
            await ask(store, KEY, "boom", where("boom"))
    assert positions(path) == {first: where("first")}


async def test_a_position_moves_on_while_the_turn_runs_and_is_gone_when_it_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.db"
    async with Store.open(path) as store:
        asked = await ask(store, KEY, "record", where("asked"))
        await store.decide_approval(asked, status="approved", decided_by=100)
        await store.keep_resume(asked, where("running"))
        unfinished = await store.unfinished_approvals()
        assert [(r.id, r.status, p) for r, p in unfinished] == [
            (asked, "approved", where("running"))
        ]
        await store.save_turn(KEY, state("done"), turn(), ends_resume=True)
        assert positions(path)[asked] is None
        await store.keep_resume(asked, where("late"))  # a late write never brings it back
        assert positions(path)[asked] is None
        assert await store.unfinished_approvals() == []
        pending = await ask(store, KEY, "echo", where("pending"))
        await store.save_usage(KEY, turn(), ends_resume=True)  # a failed turn ends it too
        [(record, stored)] = await store.unfinished_approvals()
        assert (record.id, record.status, stored) == (pending, "pending", None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        '{"v": 1, "backend"',
        "[1, 2]",
        '{"v": 2, "backend": "chat", "model": "m", "calls": [], "round": 0}',
        '{"v": 1, "backend": "carrier-pigeon", "model": "m", "calls": [], "round": 0}',
        '{"v": 1, "backend": "chat", "model": "m", "calls": {}, "round": 0}',
        '{"v": 1, "backend": "chat", "model": "m", "calls": [], "round": "0"}',
    ],
)
def test_an_unreadable_position_reads_as_none(text: str) -> None:
    assert decode(text) is None


def test_a_position_reads_back_as_written() -> None:
    position = {"backend": "responses", "model": "m", "calls": [], "round": 2, "x": "\ud800"}
    assert decode(encode(position)) == {"v": 1, **position}


async def test_forgetting_a_user_drops_the_positions_of_shared_conversations(
    tmp_path: Path,
) -> None:
    """A shared conversation's position is a copy of its history, which may hold the forgotten
    user's words: it goes (that turn will not resume); other people's own ones stay."""
    path = tmp_path / "bot.db"
    shared = ConversationKey(guild_id=1, channel_id=12, user_id=0)
    someone_else = ConversationKey(guild_id=1, channel_id=12, user_id=200)
    async with Store.open(path) as store:
        in_shared = await ask(store, shared, "record", where("shared"))
        theirs = await ask(store, someone_else, "record", where("theirs"))
        await store.forget_user(300)
    assert positions(path) == {in_shared: None, theirs: where("theirs")}
