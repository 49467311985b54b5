"""A slash command that waits on the database still answers (README: a failing command answers
one private line; the log has the details). Another process holding SQLite's write lock makes
the bot's store wait up to its busy_timeout (5 s), past Discord's 3 s for a first answer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from tests.conftest import World
from tests.e2e.harness import Chat

DEFERRED = 5
EPHEMERAL = 64


def hold_write_lock(db: Path, seconds: float, holding: threading.Event) -> None:
    """What a second process (a CLI command, a backup script) does to the bot's database."""
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        holding.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def reset_while_locked(world: World, name: str, seconds: float) -> tuple[dict, str, int]:
    """/reset while another process holds the lock: (the first callback, the follow-up's
    text, the user)."""
    chat = Chat(world.discord, name)
    db = Path(world.bot.config["storage"]["path"])
    holding = threading.Event()
    holder = asyncio.create_task(asyncio.to_thread(hold_write_lock, db, seconds, holding))
    await asyncio.to_thread(holding.wait, 5)
    command = await world.discord.slash_command("reset", chat.user, chat.channel)
    first = await command.wait_response()
    followups = await world.discord.wait_for(lambda: command.followups or None, timeout=20)
    await holder
    return first, followups[0]["content"], chat.user


async def test_a_command_slowed_by_a_locked_database_still_answers(chat_world: World) -> None:
    first, text, _ = await reset_while_locked(chat_world, "deadline-slow", seconds=3.5)
    # Acknowledged in time, privately, then the answer once the lock was free.
    assert first["type"] == DEFERRED and first["data"]["flags"] & EPHEMERAL
    assert text == "There was nothing to forget."


async def test_a_command_that_fails_inside_the_bot_says_so_in_one_line(chat_world: World) -> None:
    first, text, user = await reset_while_locked(chat_world, "deadline-fails", seconds=7.0)
    assert first["type"] == DEFERRED and first["data"]["flags"] & EPHEMERAL
    assert text == (
        "Sorry, /reset didn't work: something went wrong on my side "
        "(the bot's log has the details). Please try again."
    )
    await chat_world.bot.wait_logged(f"/reset failed for user {user}")
    assert "database is locked" in chat_world.bot.log()
