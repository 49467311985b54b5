"""Users' data: /forget with its confirmation (blocked users and DMs too), `forget-user` on a
running and a stopped bot, storage.retention_days, and `backup` while the bot answers.

What is checked is what Discord shows, what the LLM server received, and every cell of every
table of the database file, read as an operator (or an auditor) would."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e.harness import BotProcess, Chat, buttons, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, UsageReport

EPHEMERAL = 64
DAILY_TOKENS = 1000
REMOVED = "[removed at the user's request]"
TOKENS = "You've used your token allowance for today. Try again tomorrow."


@dataclass
class DataWorld:
    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    db: Path
    blocked: int


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def data_world(
    llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DataWorld]:
    """scope: thread (own conversations in channels, shared ones in threads), no DMs, one
    blocked user, and a daily token allowance."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    blocked = discord.add_user("data-blocked")
    workdir = tmp_path_factory.mktemp("user-data")
    config = bot_config(llm, workdir, workdir / "calls.jsonl", "chat", mcp={"servers": {}})
    config["discord"].update(
        scope="thread", allow_dms=False, permissions={"users": {"block": [blocked]}}
    )
    config["limits"]["user_daily_tokens"] = DAILY_TOKENS
    async with bot_running(discord, config, workdir) as bot:
        yield DataWorld(discord, llm, bot, workdir / "bot.db", blocked)


def cells(db: Path) -> list[tuple[str, str, str]]:
    """Every cell of every table as (table, column, text), blobs as latin-1: a reader in
    another process, as an auditor would search the file."""
    out = []
    with closing(sqlite3.connect(db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            for row in cursor:
                for name, value in zip(names, row, strict=True):
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    out.append((table, name, text))
    return out


def naming(db: Path, *needles: object) -> list[tuple[str, str, str]]:
    return [c for c in cells(db) if any(str(n) in c[2] for n in needles)]


def query(db: Path, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, parameters).fetchall()


async def ask(
    chat: Chat,
    text: str,
    *,
    user: int | None = None,
    channel: int | None = None,
    refused: bool = False,
) -> str:
    """Ask and wait for the answer; unless the bot `refused` before any turn began (a one-line
    answer, no status reactions), also until the turn is over."""
    asked = await chat.discord.send_message(
        channel or chat.channel, user or chat.user, f"{chat.mention()} {text}"
    )

    def answered() -> str | None:
        parts = [
            m
            for m in chat.discord.messages(channel or chat.channel)
            if (m.get("message_reference") or {}).get("message_id") == asked["id"]
            and not m["content"].endswith(" ▌")
        ]
        return "\n".join(p["content"] for p in parts) or None

    text = await chat.discord.wait_for(answered, timeout=30)
    # The final text shows before the turn lets go of the asker: a /forget right after the
    # text alone could (rightly) be told "I'm still answering you".
    if not refused:
        await chat.turn_over(int(asked["id"]))
    return text


async def forget(discord: FakeDiscord, user: int, channel: int) -> tuple[str, str]:
    """/forget, then its confirmation button: (the confirmation's text, the final text)."""
    command = await discord.slash_command("forget", user, channel)
    data = (await command.wait_response())["data"]
    assert data["flags"] & EPHEMERAL, data
    confirmation = command.original()
    assert confirmation is not None
    [button] = buttons(confirmation)
    assert button["custom_id"] == f"mcpf:{user}:confirm"
    clicked = await discord.click_button(int(confirmation["id"]), button["custom_id"], user)
    await clicked.wait_response()

    def done() -> str | None:
        message = discord.message(confirmation["id"])
        text = message["content"] if message else ""
        return text if text.startswith(("Done", "I'm", "You")) else None

    return data["content"], await discord.wait_for(done, timeout=30)


async def test_forget_erases_the_callers_data_and_only_theirs(data_world: DataWorld) -> None:
    world, llm, db = data_world, data_world.llm, data_world.db
    chat = Chat(world.discord, "forget")
    other = world.discord.add_user("forget-other")
    thread = world.discord.add_thread(chat.channel, "forget-shared")
    words, shared_words, others_words = "zebra-crossing-7", "okapi-dance-3", "quokka-smile-5"
    llm.script("k-fg-own", Text("noted"))
    llm.report_usage("k-fg-own", UsageReport(300, 300))
    llm.script("k-fg-other", Text("noted too"))
    llm.script("k-fg-shared", Text("shared answer"), Text("second shared answer"))
    llm.script("k-fg-later", Text("later answer"))
    llm.script("k-fg-again", Text("fresh answer"), Text("fresh answer again"))
    llm.report_usage("k-fg-again", UsageReport(10, 10), UsageReport(300, 300))

    assert await ask(chat, f"k-fg-own remember {words}") == "noted"
    assert await ask(chat, f"k-fg-other remember {others_words}", user=other) == "noted too"
    assert await ask(chat, f"k-fg-shared {shared_words}", channel=thread) == "shared answer"
    mention = f"k-fg-shared <@{chat.user}> said something, {others_words}"
    assert await ask(chat, mention, user=other, channel=thread) == "second shared answer"
    assert naming(db, chat.user, words, shared_words)  # the search finds them before

    confirmation, done = await forget(world.discord, chat.user, chat.channel)

    assert "Erase it?" in confirmation
    assert done.startswith("Done: I've forgotten you")
    assert naming(db, chat.user, words, shared_words) == []
    # The other user's conversation, words and usage stay.
    assert naming(db, other, others_words)
    assert query(db, "SELECT COUNT(*) FROM usage WHERE user_id = ?", (other,)) == [(2,)]
    # In the shared conversation their turn reads as removed; the others' turns stay.
    assert await ask(chat, "k-fg-later go on", user=other, channel=thread) == "later answer"
    [later] = llm.requests_for("k-fg-later")
    sent = [m["content"] for m in later.body["messages"] if m["role"] == "user"]
    assert sent[0] == REMOVED and others_words in sent[1] and shared_words not in str(sent)
    # Their next question starts from nothing.
    assert await ask(chat, "k-fg-again hello") == "fresh answer"
    [fresh] = llm.requests_for("k-fg-again")
    assert [m["role"] for m in fresh.body["messages"]] == ["system", "user"]
    # Their last 24 hours still count: 600 before, 20 and 600 after, over the 1000 allowed.
    assert await ask(chat, "k-fg-again once more") == "fresh answer again"
    assert await ask(chat, "k-fg-again one too many", refused=True) == TOKENS
    assert len(llm.requests_for("k-fg-again")) == 2


async def test_a_blocked_user_and_a_dm_can_forget(data_world: DataWorld) -> None:
    world = data_world
    chat = Chat(world.discord, "forget-anyone")
    refused = await world.discord.slash_command("status", world.blocked, chat.channel)
    assert (await refused.wait_response())["data"]["content"] == "You can't use my commands here."
    _, done = await forget(world.discord, world.blocked, chat.channel)
    assert done.startswith("Done: I've forgotten you")

    # DMs are off for questions, on for erasure.
    world.llm.script("k-fg-dm", Text("noted in the channel"))
    await ask(chat, "k-fg-dm my words pangolin-9")
    dm = world.discord.add_dm_channel(chat.user)
    _, done = await forget(world.discord, chat.user, dm)
    assert done == "Done: I've forgotten you (1 conversation(s) deleted)."
    assert naming(world.db, chat.user, "pangolin-9") == []
    # Once a minute at most.
    again = await world.discord.slash_command("forget", chat.user, dm)
    text = (await again.wait_response())["data"]["content"]
    assert text.startswith("You asked me to forget you less than a minute ago.")


async def test_forget_user_on_a_running_bot(data_world: DataWorld) -> None:
    world = data_world
    chat = Chat(world.discord, "forget-cli")
    slow = Text("noted " * 30, chunk_size=6, delay_s=0.25)  # 7 s: longer than a CLI start
    world.llm.script("k-fg-cli", Text("noted"), slow, Text("hello again"))
    await ask(chat, "k-fg-cli remember capybara-4")
    # Erased while their next answer still streams: that turn must not save their words back.
    asked = await chat.say("k-fg-cli and remember wombat-8")
    await world.discord.wait_for(lambda: chat.replies_to(int(asked["id"])))

    done = await asyncio.to_thread(world.bot.cli, "forget-user", str(chat.user))

    assert done.returncode == 0, done.stderr
    assert "done by the running bot" in done.stdout
    await chat.answer(int(asked["id"]))
    assert naming(world.db, chat.user, "capybara-4", "wombat-8") == []
    await ask(chat, "k-fg-cli and now?")
    assert [m["role"] for m in world.llm.requests_for("k-fg-cli")[-1].body["messages"]] == [
        "system",
        "user",
    ]


async def test_backup_while_the_bot_answers(data_world: DataWorld, tmp_path: Path) -> None:
    world = data_world
    chat = Chat(world.discord, "backup")
    world.llm.script("k-backup-done", Text("kept answer"))
    await ask(chat, "k-backup-done keep this")
    # A long answer streams while the copy is made.
    world.llm.script("k-backup-slow", Text("slow " * 40, chunk_size=5, delay_s=0.05))
    asked = await chat.say("k-backup-slow talk a while")
    target = tmp_path / "copies" / "bot-copy.db"

    made = await asyncio.to_thread(world.bot.cli, "backup", str(target))

    assert made.returncode == 0, made.stderr
    assert "bytes" in made.stdout and "conversations" in made.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not target.with_name(target.name + "-wal").exists()
    with closing(sqlite3.connect(f"file:{target}?mode=ro", uri=True)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        histories = [r[0] for r in copy.execute("SELECT history FROM conversations")]
    assert any("k-backup-done keep this" in h and "kept answer" in h for h in histories)
    await chat.answer(int(asked["id"]))


async def test_retention_and_forget_user_on_a_stopped_bot(llm: ScriptedLLM, tmp_path: Path) -> None:
    discord = FakeDiscord()
    await discord.start()
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", mcp={"servers": {}})
    config["storage"]["retention_days"] = 7
    db = tmp_path / "bot.db"
    bot = BotProcess(discord, config, tmp_path)
    old, recent, gone = (Chat(discord, name) for name in ("ret-old", "ret-recent", "ret-gone"))
    llm.script("k-ret", *(Text(f"answer {n}") for n in range(6)))
    try:
        async with running(bot):
            for chat in (old, recent, gone):
                await ask(chat, f"k-ret first words of {chat.user}")
        # While stopped: one conversation idle for 8 days, with its usage; one for 6.
        eight, six = (datetime.now(UTC) - timedelta(days=d) for d in (8, 6))
        with closing(sqlite3.connect(db)) as conn:
            for user, when in ((old.user, eight), (recent.user, six)):
                conn.execute(
                    "UPDATE conversations SET updated_at = ? WHERE user_id = ?",
                    (when.isoformat(timespec="microseconds"), user),
                )
            conn.execute(
                "UPDATE usage SET created_at = ? WHERE user_id = ?",
                (eight.isoformat(timespec="microseconds"), old.user),
            )
            conn.commit()
        erased = bot.cli("forget-user", str(gone.user))
        assert erased.returncode == 0, erased.stderr
        assert f"erased user {gone.user}" in erased.stdout
        assert naming(db, gone.user, f"first words of {gone.user}") == []

        async with running(bot):
            await bot.wait_logged(
                "retention (7 days): deleted 1 conversation(s) and 0 approval(s); "
                "folded 1 usage row(s)"
            )
            assert naming(db, old.user) == []
            assert query(db, "SELECT COUNT(*) FROM usage_daily") == [(1,)]
            await ask(old, "k-ret again")
            await ask(recent, "k-ret again")
            old_sent, recent_sent = llm.requests_for("k-ret")[-2:]
            assert f"first words of {old.user}" not in str(old_sent.body["messages"])
            assert f"first words of {recent.user}" in str(recent_sent.body["messages"])
            # /status says when: 7 days after this last turn.
            status = await discord.slash_command("status", recent.user, recent.channel)
            text = (await status.wait_response())["data"]["content"]
            [when] = re.findall(r"\*\*Forgotten\*\*: <t:(\d+):R>", text)
            due = datetime.now(UTC) + timedelta(days=7)
            assert abs(int(when) - due.timestamp()) < 600, text
    finally:
        await bot.kill()
        await discord.stop()
