"""Past one machine: two bot processes with disjoint shards, each answering only its own guilds."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM


def hashed(user_id: int) -> str:
    return hashlib.sha256(f"mcpcord-discord-user:{user_id}".encode()).hexdigest()[:32]


def stored_keys(bot: BotProcess) -> set[str]:
    """The conversations in this process's own SQLite file (read-only, beside the running bot)."""
    path = Path(bot.config["storage"]["path"])
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return {row[0] for row in db.execute("SELECT key FROM conversations")}


def turns_of(bot: BotProcess) -> list[str]:
    return [
        line.split("conversation=", 1)[1].split()[0]
        for line in bot.log().splitlines()
        if " turn conversation=" in line
    ]


async def test_two_shard_processes_answer_only_their_own_guilds(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord()
    zero = discord.add_guild("Shard Zero", shard=(0, 2))
    one = discord.add_guild("Shard One", shard=(1, 2))
    assert (zero >> 22) % 2 == 0 and (one >> 22) % 2 == 1
    chat_zero = Chat(discord, "zero", channel=discord.add_channel("zero", guild_id=zero))
    chat_one = Chat(discord, "one", channel=discord.add_channel("one", guild_id=one))
    dm_user = discord.add_user("dm-user")
    chat_dm = Chat(discord, "dm", channel=discord.add_dm_channel(dm_user))
    await discord.start()
    bots = []
    # Shard 0 on the chat backend, shard 1 on responses: both send the hashed `user`.
    for shard, backend in ((0, "chat"), (1, "responses")):
        workdir = tmp_path / f"shard{shard}"
        config = bot_config(llm, workdir, workdir / "calls.jsonl", backend, mcp={"servers": {}})
        config["discord"].update(allow_dms=True, shard_count=2, shard_ids=[shard])
        bots.append(BotProcess(discord, config, workdir))
    try:
        for bot in bots:
            await bot.start()
        asked = {}
        for key, chat, user in (
            ("k-shard-zero", chat_zero, chat_zero.user),
            ("k-shard-one", chat_one, chat_one.user),
            ("k-shard-dm", chat_dm, dm_user),
        ):
            llm.script(key)
            message = await chat.say(f"{key} hello", user=user, mention=chat is not chat_dm)
            asked[key] = (chat, message)
        for key, (chat, message) in asked.items():
            await chat.answer_text(int(message["id"]), f"{key} hello")
        # Each question was answered once, by the process that owns its guild (DMs: shard 0).
        for chat, message in asked.values():
            assert len(chat.replies_to(int(message["id"]))) == 1
        assert sorted(turns_of(bots[0])) == sorted(
            [f"{zero}:{chat_zero.channel}:{chat_zero.user}", f"0:{chat_dm.channel}:{dm_user}"]
        )
        assert turns_of(bots[1]) == [f"{one}:{chat_one.channel}:{chat_one.user}"]
        # Each process keeps its own database and sees only its own guilds.
        main_on_zero = (discord.guild_id >> 22) % 2 == 0  # the fake's usual guild, too
        assert f"in {2 if main_on_zero else 1} guild(s)" in bots[0].log()
        assert f"in {1 if main_on_zero else 2} guild(s)" in bots[1].log()
        assert stored_keys(bots[0]) == set(turns_of(bots[0]))
        assert stored_keys(bots[1]) == set(turns_of(bots[1]))
        # The LLM server sees the same pseudonymous user on both backends, never the raw id.
        zero_body = llm.requests_for("k-shard-zero")[-1].body
        one_body = llm.requests_for("k-shard-one")[-1].body
        assert "messages" in zero_body and "input" in one_body
        assert zero_body["user"] == hashed(chat_zero.user)
        assert one_body["user"] == hashed(chat_one.user)
        assert str(chat_one.user) not in one_body["user"]
    finally:
        codes = [await bot.stop() for bot in bots]
        await discord.stop()
    assert codes == [0, 0]
