"""Two shard processes of one bot token against one fake Discord: one global limit for both.

Discord's 50 requests/s belong to the token, so the processes must share them: with Redis
(`coordination.redis_url`) through one window, without it each taking its share of the shards.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.core.events import Usage
from bot.core.limits import BUSY, COST
from bot.logs import turn_cost
from bot.ops.metrics import discord_kind
from tests.e2e.harness import Chat
from tests.e2e.shards import TwoShards, story, two_shards
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Stall, Text, UsageReport
from tests.redis_service import SHARED_URL, drop_prefix, own_prefix, private_redis, shared_redis


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
    # Under pytest-timeout's 180 s for the whole test, so a turn that never ends says why here.
    give_up = asyncio.get_running_loop().time() + 150
    for (chat, _, text), message in zip(asks, asked, strict=True):
        left = give_up - asyncio.get_running_loop().time()
        try:
            await chat.answer(int(message["id"]), lambda t, text=text: t == text, timeout=left)
        except TimeoutError:
            shown = [p["content"] for p in chat.replies_to(int(message["id"]))]
            mine = (world.discord.message(int(message["id"])) or {}).get("reactions", [])
            raise AssertionError(
                f"shown: {shown}\nreactions: {[r['emoji']['name'] for r in mine if r['me']]}\n"
                + troubles(world)
            ) from None


def troubles(world: TwoShards) -> str:
    """What the bot processes logged of failures and retries: why a turn failed or never ended."""
    lines = [
        f"shard {n}: {line}"
        for n, bot in enumerate(world.bots)
        for line in bot.log().splitlines()
        if " WARNING " in line or " ERROR " in line or "failed" in line
    ]
    return "\n".join(lines[-40:])


async def test_two_half_processes_take_their_share_of_the_global_limit(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    # 30 channels a shard, two answers each: either process alone could spend 50 requests a
    # second on its channels; together they must not pass the token's 50.
    async with two_shards(llm, tmp_path, channels=30) as world:
        await burst(world, "k-share", per_channel=2, words=40)
        assert world.discord.counters["429"] == 0, world.discord.counters


@pytest.mark.redis
async def test_two_whole_processes_share_one_window_through_redis(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    # With Redis each process may plan all 50/s (the share alone would not hold this burst
    # below the token's limit if each planned the whole; see the test above failing without it).
    client = await shared_redis()
    prefix = own_prefix()
    coordination = {"redis_url": SHARED_URL, "prefix": prefix}
    try:
        async with two_shards(llm, tmp_path, 30, {"coordination": coordination}) as world:
            await burst(world, "k-redis", per_channel=2, words=40)
            assert world.discord.counters["429"] == 0, world.discord.counters
            for bot in world.bots:
                assert "Redis is unreachable" not in bot.log()
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


def refusals(discord: FakeDiscord) -> list[str]:
    """Each 429 with what else reached Discord in the second before it, for a failure message."""
    shown = []
    for rec in discord.requests:
        if rec.status == 429:
            before = [r for r in discord.requests if rec.t - 1 < r.t <= rec.t]
            kinds = Counter(discord_kind(r.method, r.path) for r in before)
            shown.append(f"{rec.method} {rec.path}: {len(before)} in the second before, {kinds}")
    return shown


async def asked_model(llm: ScriptedLLM, key: str) -> None:
    """Until the turn is under way: its request reached the model."""
    for _ in range(300):
        if llm.requests_for(key):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{key} never reached the model")


async def ask(chat: Chat, key: str, user: int) -> tuple[dict, str]:
    asked = await chat.say(f"{key} go", user=user)
    parts = await chat.answer(int(asked["id"]), timeout=60)
    return asked, "\n".join(p["content"] for p in parts)


@pytest.mark.redis
async def test_limits_hold_across_processes_and_a_dead_processs_lease_lapses(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    client = await shared_redis()
    prefix = own_prefix()
    model = "openai/gpt-4o-mini"  # priced in litellm's map: the cost limit can bite
    overrides: dict[str, Any] = {
        "coordination": {"redis_url": SHARED_URL, "prefix": prefix},
        "limits": {"user_concurrent_turns": 1, "user_daily_cost_usd": 0.01},
        "llm": {"model": model, "models": [model]},
    }
    llm.serve("gpt-4o-mini")
    try:
        async with two_shards(llm, tmp_path, 1, overrides) as world:
            zero, one = world.chats[0][0], world.chats[1][0]
            user = world.discord.add_user("both-shards")
            # A turn runs on shard 0: the same user on shard 1 is told to wait.
            llm.script("k-lim-slow", Stall(4, text="slow start"))
            slow = await zero.say("k-lim-slow go", user=user)
            await asked_model(llm, "k-lim-slow")
            _, busy = await ask(one, "k-lim-busy", user)
            assert busy == BUSY
            assert llm.requests_mentioning("k-lim-busy") == []
            await zero.answer_text(int(slow["id"]), "slow start", timeout=30)
            # Its final text shows a moment before the turn lets go of the user (CI asked in
            # between and was rightly told to wait): the turn's last status reaction comes after.
            await zero.turn_over(int(slow["id"]))
            # Spending over the daily cost on shard 1 is refused on shard 0 too.
            spend = UsageReport(100_000, 20_000)
            assert (turn_cost(model, Usage(input_tokens=100_000, output_tokens=20_000)) or 0) > 0.01
            llm.report_usage("k-lim-spend", spend)
            spend_asked, spent = await ask(one, "k-lim-spend", user)
            assert "echo" in spent
            await one.turn_over(int(spend_asked["id"]))  # its usage is counted by then
            _, refused = await ask(zero, "k-lim-after", user)
            assert refused == COST
            assert llm.requests_mentioning("k-lim-after") == []
            # A process killed mid-turn: its lease lapses, the user is answered on the other.
            other = world.discord.add_user("killed-mid-turn")
            llm.script("k-lim-kill", Stall(8, text="never finished"))
            await zero.say("k-lim-kill go", user=other)
            await asked_model(llm, "k-lim-kill")
            await world.bots[0].kill()
            _, held = await ask(one, "k-lim-held", other)
            assert held == BUSY
            answer = ""
            for attempt in range(20):  # the lease (10 s) lapses; never much later
                await asyncio.sleep(1.5)
                _, answer = await ask(one, f"k-lim-free{attempt}", other)
                if answer != BUSY:
                    break
            assert "echo" in answer
    finally:
        await drop_prefix(client, prefix)
        await client.aclose()


@pytest.mark.redis
async def test_redis_stopped_mid_run_answers_go_on_within_the_share_and_coordination_returns(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    async with private_redis() as redis_server:
        coordination = {"redis_url": redis_server.url, "prefix": own_prefix()}
        async with two_shards(llm, tmp_path, 30, {"coordination": coordination}) as world:
            await burst(world, "k-up", per_channel=1, words=30)
            assert world.discord.counters["429"] == 0, refusals(world.discord)
            redis_server.stop()
            await burst(world, "k-down", per_channel=2, words=40)
            assert world.discord.counters["429"] == 0, refusals(world.discord)
            for bot in world.bots:
                assert bot.log().count("Redis is unreachable") == 1
            await redis_server.start()
            await asyncio.sleep(1.2)  # a process looks again a second after a failure
            await burst(world, "k-back", per_channel=2, words=40)
            assert world.discord.counters["429"] == 0, refusals(world.discord)
            for bot in world.bots:
                assert "Redis is back" in bot.log()


@pytest.mark.redis
async def test_a_redis_stall_mid_burst_adds_nothing_to_what_the_window_already_let_through(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    # Both processes lose Redis for a moment while their writes wait in the shared window: what
    # it let through in the last second is still reaching Discord, so nothing waiting may go on
    # alone before that second has passed (and, Redis back by then, nothing goes alone at all).
    async with private_redis() as redis_server:
        coordination = {"redis_url": redis_server.url, "prefix": own_prefix()}
        async with two_shards(llm, tmp_path, 30, {"coordination": coordination}) as world:
            running = asyncio.create_task(burst(world, "k-stall", per_channel=2, words=40))
            # Polled: the fake announces no count.
            while world.discord.counters["messages_created"] < 20 and not running.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            # Long enough that calls in flight under load surely time out (TIMEOUT_S, 0.5 s);
            # short enough that Redis is back before the pause after the first timeout ends.
            await redis_server.freeze(1.2)
            await running
            assert world.discord.counters["429"] == 0, refusals(world.discord)
            # The stall was felt (a process with no call out during it may not notice), and
            # every process that found Redis away found it back.
            logs = [bot.log() for bot in world.bots]
            assert any("Redis is unreachable" in log for log in logs)
            for log in logs:
                assert ("Redis is unreachable" in log) <= ("Redis is back" in log)
