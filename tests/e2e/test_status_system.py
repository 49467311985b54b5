"""/system (a channel's prompt, kept across restarts, managers only), /status (token sums and
cost as the LLM server reported them) and limits.user_daily_cost_usd, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e.harness import BotProcess, Chat, instructions
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, UsageReport

CONFIGURED = "You are the configured persona of this channel."
DEFAULT = "You are the default assistant of every channel."
EPHEMERAL = 64
COST_LIMIT = 0.01
# gpt-4o-mini in litellm's price map, per token: the oracle is the price list, not the bot's sum.
INPUT_USD, CACHED_INPUT_USD, OUTPUT_USD = 0.15e-6, 0.075e-6, 0.60e-6


@dataclass
class Priced:
    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    backend: str
    model: str  # as the bot names it (the LLM server sees it without the provider prefix)
    manager_role: int
    persona: Chat  # a channel with its own configured system_prompt


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def priced(
    request: pytest.FixtureRequest, llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Priced]:
    """A bot on a model litellm's price map knows, with a daily cost limit and a manager role."""
    backend = request.param
    discord = FakeDiscord()
    await discord.start()
    manager_role = discord.add_role("bot-managers")
    persona = Chat(discord, "persona")
    workdir = tmp_path_factory.mktemp(f"priced-{backend}")
    config = bot_config(llm, workdir, workdir / "calls.jsonl", backend, mcp={"servers": {}})
    model = "openai/gpt-4o-mini" if backend == "chat" else "gpt-4o-mini"
    llm.serve("gpt-4o-mini")
    config["llm"].update(model=model, models=[model], system_prompt=DEFAULT)
    config["discord"]["channels"] = {persona.channel: {"system_prompt": CONFIGURED}}
    config["discord"]["permissions"] = {"manager_roles": [manager_role]}
    config["limits"]["user_daily_cost_usd"] = COST_LIMIT
    async with bot_running(discord, config, workdir) as bot:
        yield Priced(discord, llm, bot, backend, model, manager_role, persona)


async def command(world: Priced, name: str, user: int, channel: int, **options: object) -> str:
    """Run a slash command; return the text of its (required to be ephemeral) answer."""
    interaction = await world.discord.slash_command(name, user, channel, options)
    data = (await interaction.wait_response())["data"]
    assert data["flags"] & EPHEMERAL, f"/{name} answered publicly: {data}"
    return data["content"]


async def ask(world: Priced, chat: Chat, key: str, user: int | None = None) -> str:
    asked = await chat.say(f"{key} question", user=user)
    parts = await chat.answer(int(asked["id"]))
    return "\n".join(p["content"] for p in parts)


async def test_system_prompt_is_shown_set_by_managers_only_kept_and_cleared(
    priced: Priced,
) -> None:
    world = priced
    chat = Chat(world.discord, "system", channel=world.persona.channel)
    manager = world.discord.add_user("system-manager", roles=[world.manager_role])
    key = f"k-system-{world.backend}"
    world.llm.script(key)

    shown = await command(world, "system", chat.user, chat.channel)
    assert CONFIGURED in shown
    assert f"discord.channels.{chat.channel}.system_prompt" in shown

    refused = await command(world, "system", chat.user, chat.channel, prompt="Talk like a pirate.")
    assert "Only admins and members with a manager role" in refused
    assert CONFIGURED in await command(world, "system", chat.user, chat.channel)
    await ask(world, chat, key)
    assert CONFIGURED in instructions(world.llm.requests_for(key)[-1].body)

    done = await command(world, "system", manager, chat.channel, prompt="Talk like a pirate.")
    assert "Talk like a pirate." in done
    await ask(world, chat, key)
    assert instructions(world.llm.requests_for(key)[-1].body) == "Talk like a pirate."

    # A fresh process on the same database file still uses it.
    assert await world.bot.stop() == 0
    await world.bot.start()
    await ask(world, chat, key)
    assert instructions(world.llm.requests_for(key)[-1].body) == "Talk like a pirate."
    shown = await command(world, "system", chat.user, chat.channel)
    assert "set with /system for this channel" in shown and "Talk like a pirate." in shown

    refused = await command(world, "system", chat.user, chat.channel, clear=True)
    assert "Only admins and members with a manager role" in refused
    cleared = await command(world, "system", manager, chat.channel, clear=True)
    assert "Cleared." in cleared and CONFIGURED in cleared
    await ask(world, chat, key)
    assert CONFIGURED in instructions(world.llm.requests_for(key)[-1].body)


async def test_system_prompt_in_a_plain_channel_replaces_the_default(priced: Priced) -> None:
    world = priced
    chat = Chat(world.discord, "system-plain")
    key = f"k-system-plain-{world.backend}"
    world.llm.script(key)
    owner = world.discord.owner_id  # the guild owner: an Administrator, so a manager
    assert "llm.system_prompt" in await command(world, "system", chat.user, chat.channel)
    await command(world, "system", owner, chat.channel, prompt="Answer in haiku. Today: {date}.")
    await ask(world, chat, key)
    sent = instructions(world.llm.requests_for(key)[-1].body)
    assert sent.startswith("Answer in haiku. Today: ") and "{date}" not in sent
    await command(world, "system", owner, chat.channel, clear=True)
    await ask(world, chat, key)
    assert instructions(world.llm.requests_for(key)[-1].body) == DEFAULT


async def test_system_prompt_set_in_a_thread_applies_to_that_thread_only(
    priced: Priced,
) -> None:
    world = priced
    chat = Chat(world.discord, "system-thread")
    thread = Chat(
        world.discord,
        "system-thread-inside",
        channel=world.discord.add_thread(chat.channel, "a thread", chat.user),
    )
    sibling = Chat(
        world.discord,
        "system-thread-sibling",
        channel=world.discord.add_thread(chat.channel, "another thread", chat.user),
    )
    key = f"k-system-thread-{world.backend}"
    world.llm.script(key)
    owner = world.discord.owner_id  # the guild owner: an Administrator, so a manager
    done = await command(world, "system", owner, thread.channel, prompt="Only in this thread.")
    assert "Only in this thread." in done
    for where in (thread, chat, sibling):
        await ask(world, where, key)
    inside, parent, other = (instructions(r.body) for r in world.llm.requests_for(key))
    assert inside == "Only in this thread."
    assert parent == DEFAULT and other == DEFAULT
    await command(world, "system", owner, thread.channel, clear=True)


async def test_status_shows_the_token_sums_the_server_reported(priced: Priced) -> None:
    world = priced
    chat = Chat(world.discord, "status")
    manager = world.discord.add_user("status-manager", roles=[world.manager_role])
    key = f"k-status-{world.backend}"
    reports = [UsageReport(12_000, 3_000, cached=2_000, reasoning=500), UsageReport(8_000, 1_200)]
    world.llm.report_usage(key, *reports)
    before = await command(world, "status", chat.user, chat.channel)
    assert "**You, all channels, last 24 hours**: nothing yet" in before

    for _ in reports:
        await ask(world, chat, key)
    text = await command(world, "status", chat.user, chat.channel)

    sums = "20,000 input tokens (2,000 cached), 4,200 output tokens (500 reasoning), 2 turn(s)"
    assert f"**You, all channels, last 24 hours**: {sums}" in text
    assert f"**You, all channels, last 30 days**: {sums}" in text
    # 10,000 * 0.15 + 2,000 * 0.075 + 3,000 * 0.60 = 3,450 and 8,000 * 0.15 + 1,200 * 0.60 =
    # 1,920 millionths of a dollar: $0.00537 (without the cache discount it would be $0.0055).
    cost = 10_000 * INPUT_USD + 2_000 * CACHED_INPUT_USD + 3_000 * OUTPUT_USD
    cost += 8_000 * INPUT_USD + 1_200 * OUTPUT_USD
    assert f"{cost:.4f}" == "0.0054"
    assert f"{sums}, $0.0054" in text
    assert f"**Model**: `{world.model}` (llm.model)" in text
    assert f"**Backend**: {world.backend}" in text
    assert "**Scope**: user" in text
    if world.backend == "chat":
        assert "**Conversation**: 4 message(s) stored" in text
    else:
        assert "**Conversation**: kept by the model server" in text
    assert "**Your allowance per 24 hours**: $0.01" in text
    assert "This channel" not in text  # channel totals are for managers

    as_manager = await command(world, "status", manager, chat.channel)
    assert f"**This channel, everyone, last 24 hours**: {sums}" in as_manager
    assert "**You, all channels, last 24 hours**: nothing yet" in as_manager


async def test_a_user_over_the_daily_cost_gets_one_line_and_no_llm_call(priced: Priced) -> None:
    world = priced
    chat = Chat(world.discord, "cost")
    key = f"k-cost-{world.backend}"
    spend = UsageReport(100_000, 20_000)  # 0.027 USD on gpt-4o-mini: over the 0.01 limit
    assert spend.input * INPUT_USD + spend.output * OUTPUT_USD > COST_LIMIT
    world.llm.report_usage(key, spend)
    assert "echo" in await ask(world, chat, key)
    refused = await ask(world, chat, key)
    assert refused == "You've used your spending allowance for today. Try again tomorrow."
    assert len(world.llm.requests_for(key)) == 1
    # Someone else in the same channel is not affected.
    other = world.discord.add_user("cost-other")
    assert "echo" in await ask(world, chat, f"{key}-other", user=other)
