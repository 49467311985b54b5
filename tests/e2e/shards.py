"""Two shard processes of one bot token against one fake Discord (the coordination tests and
bench/shard_bench.py): a guild per shard with `channels` channels each, a bot process per shard."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM

SHARDS = 2


def story(tag: str, words: int) -> str:
    return " ".join(f"{tag}w{j}" for j in range(words))


class TwoShards:
    """One fake Discord with `channels` channels on each shard's guild, and a bot per shard."""

    def __init__(self, discord: FakeDiscord, llm: ScriptedLLM, channels: int) -> None:
        self.discord = discord
        self.llm = llm
        self.chats: list[list[Chat]] = []
        for shard in range(SHARDS):
            guild = discord.add_guild(f"Shard {shard}", shard=(shard, SHARDS))
            self.chats.append(
                [
                    Chat(
                        discord,
                        f"s{shard}c{c}",
                        channel=discord.add_channel(f"c{c}", guild_id=guild),
                    )
                    for c in range(channels)
                ]
            )
        self.bots: list[BotProcess] = []


def shard_config(
    llm: ScriptedLLM, workdir: Path, shard: int, overrides: dict[str, Any]
) -> dict[str, Any]:
    config = bot_config(llm, workdir, workdir / "calls.jsonl", "chat", mcp={"servers": {}})
    config["discord"].update(shard_count=SHARDS, shard_ids=[shard])
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return config


@contextlib.asynccontextmanager
async def two_shards(
    llm: ScriptedLLM, tmp_path: Path, channels: int, overrides: dict[str, Any] | None = None
) -> AsyncIterator[TwoShards]:
    discord = FakeDiscord(rate_limits=True)
    world = TwoShards(discord, llm, channels)
    await discord.start()
    try:
        for shard in range(SHARDS):
            workdir = tmp_path / f"shard{shard}"
            config = shard_config(llm, workdir, shard, overrides or {})
            bot = BotProcess(discord, config, workdir)
            world.bots.append(bot)
            await bot.start()
        yield world
    finally:
        codes = [await bot.stop() for bot in world.bots]
        await discord.stop()
    # 0, or -9 for a process a test killed on purpose.
    assert all(code in (0, -9) for code in codes), [bot.log()[-2000:] for bot in world.bots]
