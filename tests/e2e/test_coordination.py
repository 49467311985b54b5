"""Two shard processes of one bot token against one fake Discord: one global limit for both.

Discord's 50 requests/s belong to the token, so the processes must share them: with Redis
(`coordination.redis_url`) through one window, without it each taking its share of the shards.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text

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


def shard_config(llm: ScriptedLLM, workdir: Path, shard: int, **overrides: Any) -> dict[str, Any]:
    config = bot_config(llm, workdir, workdir / "calls.jsonl", "chat", mcp={"servers": {}})
    config["discord"].update(shard_count=SHARDS, shard_ids=[shard])
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return config


@contextlib.asynccontextmanager
async def two_shards(
    llm: ScriptedLLM, tmp_path: Path, channels: int, **overrides: Any
) -> AsyncIterator[TwoShards]:
    discord = FakeDiscord(rate_limits=True)
    world = TwoShards(discord, llm, channels)
    await discord.start()
    try:
        for shard in range(SHARDS):
            workdir = tmp_path / f"shard{shard}"
            bot = BotProcess(discord, shard_config(llm, workdir, shard, **overrides), workdir)
            world.bots.append(bot)
            await bot.start()
        yield world
    finally:
        codes = [await bot.stop() for bot in world.bots]
        await discord.stop()
    assert codes == [0] * len(codes), [bot.log()[-2000:] for bot in world.bots]


async def burst(world: TwoShards, key: str, per_channel: int, words: int) -> None:
    """Every channel of both shards asked `per_channel` questions at once; every final exact."""
    asks = []
    for shard, chats in enumerate(world.chats):
        for c, chat in enumerate(chats):
            for n in range(per_channel):
                marker = f"{key}-{shard}-{c}-{n}"
                asks.append((chat, marker, story(f"{shard}x{c}x{n}", words)))
    llm = world.llm
    for _, marker, text in asks:
        llm.script(marker, Text(text, chunk_size=7, delay_s=0.05))
    users = [world.discord.add_user(marker) for _, marker, _ in asks]
    asked = await asyncio.gather(
        *(
            chat.say(f"{marker} go", user=user)
            for (chat, marker, _), user in zip(asks, users, strict=True)
        )
    )
    for (chat, _, text), message in zip(asks, asked, strict=True):
        parts = await chat.answer(int(message["id"]), lambda t, text=text: t == text, timeout=180)
        assert "\n".join(p["content"] for p in parts) == text


@pytest.fixture
def redis_prefix() -> str:
    return f"mcpcord-test:{uuid.uuid4().hex[:12]}"


async def test_two_half_processes_take_their_share_of_the_global_limit(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    # 30 channels a shard, two answers each: either process alone could spend 50 requests a
    # second on its channels; together they must not pass the token's 50.
    async with two_shards(llm, tmp_path, channels=30) as world:
        await burst(world, "k-share", per_channel=2, words=40)
        assert world.discord.counters["429"] == 0, world.discord.counters
