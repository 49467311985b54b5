"""End to end, on a bot with shared (`channel`) conversations and tight limits: queued turns,
bursts against the per-user limits, a guild refusing the command sync, and SIGTERM mid-answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.conftest import World, bot_config
from tests.e2e.harness import INDICATOR, BotProcess, Chat, buttons
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall

STALE_GUILD = 1234567890123456789  # a guild the bot was removed from: sync answers 403 / 50001


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def busy_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[World]:
    backend: str = request.param
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp(f"busy-{backend}")
    call_log = workdir / "calls.jsonl"
    config = bot_config(
        llm,
        workdir,
        call_log,
        backend,
        discord={
            "edit_interval_s": 1.0,
            "scope": "channel",
            "command_guild_ids": [discord.guild_id, STALE_GUILD],
        },
        # A daily allowance makes the limit check await the store: the race the burst shows.
        limits={
            "user_concurrent_turns": 2,
            "user_turns_per_minute": 100,
            "user_daily_tokens": 10**9,
        },
    )
    config["mcp"]["approval_timeout_s"] = 30
    bot = BotProcess(discord, config, workdir)
    try:
        await bot.start()
        yield World(discord=discord, llm=llm, bot=bot, call_log=call_log, backend=backend)
        assert await bot.stop() == 0, bot.log()[-3000:]
    finally:
        await bot.kill()
        await discord.stop()


async def test_a_guild_refusing_the_command_sync_is_logged_and_the_bot_runs_on(
    busy_world: World,
) -> None:
    world = busy_world
    log = world.bot.log()
    assert f"guild {STALE_GUILD} refused the sync" in log
    assert "command_guild_ids" in log  # the line says what to fix
    assert "Traceback" not in log
    assert {c["name"] for c in world.discord.commands[world.discord.guild_id]} >= {"reset"}
    chat = Chat(world.discord, "sync")
    asked = await chat.say(f"k-sync-{world.backend} still here?")
    assert "echo" in await chat.answer_text(int(asked["id"]), "echo")


async def test_queued_turn_does_not_type_and_says_it_is_queued(busy_world: World) -> None:
    world = busy_world
    chat = Chat(world.discord, "queue")
    other = world.discord.add_user("queue-b")
    key_a, key_b = f"k-queue-a-{world.backend}", f"k-queue-b-{world.backend}"
    world.llm.script(key_a, [ToolCall("gated__record", {"note": "queue-a"})], Text("A is done."))
    world.llm.script(key_b, Text("B gets the answer."))
    asked_a = await chat.say(f"{key_a} record please")
    prompt = await chat.prompt()
    asked_b = await chat.say(f"{key_b} my turn?", user=other)
    waiting_since = time.monotonic()

    def queued() -> dict | None:
        lines = [m for m in chat.replies_to(int(asked_b["id"])) if "Queued" in m["content"]]
        return lines[0] if lines else None

    line = await world.discord.wait_for(queued, timeout=15)
    typing = world.discord.requests_to("POST", f"/channels/{chat.channel}/typing")
    assert [r for r in typing if r.t > waiting_since] == [], "a queued turn typed"
    assert world.llm.requests_for(key_b) == []

    custom_id = next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith("approve"))
    await (
        await world.discord.click_button(int(prompt["id"]), custom_id, chat.user)
    ).wait_response()
    await chat.answer_text(int(asked_a["id"]), "A is done.")
    parts = await chat.answer(int(asked_b["id"]), lambda t: "B gets the answer." in t)
    assert [p["content"] for p in parts] == ["B gets the answer."]
    assert parts[0]["id"] == line["id"], "the queued line becomes the answer"


async def test_burst_of_mentions_passes_at_most_the_concurrent_limit(busy_world: World) -> None:
    world = busy_world
    user = world.discord.add_user("burst")
    key = f"k-burst-{world.backend}"
    world.llm.script(
        key, *[Text(f"burst answer {i}", chunk_size=3, delay_s=0.15) for i in range(10)]
    )
    chats = [Chat(world.discord, f"burst{i}") for i in range(10)]  # ten conversations
    asked = await asyncio.gather(*(c.say(f"{key} go {i}", user=user) for i, c in enumerate(chats)))
    texts = [
        await c.answer_text(int(m["id"]), "", timeout=30) for c, m in zip(chats, asked, strict=True)
    ]
    answered = [t for t in texts if t.startswith("burst answer")]
    refused = [t for t in texts if "still working on your other questions" in t]
    assert len(answered) == 2 and len(refused) == 8, texts
    assert len(world.llm.requests_for(key)) == 2  # the refused ones never reached the model


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.mark.parametrize("backend", ["chat", "responses"])
async def test_sigterm_mid_answer_leaves_an_interrupted_note(
    discord: FakeDiscord, llm: ScriptedLLM, tmp_path, backend: str
) -> None:
    config = bot_config(
        llm, tmp_path, tmp_path / "calls.jsonl", backend, mcp={"servers": {}}, shutdown_grace_s=1
    )
    bot = BotProcess(discord, config, tmp_path)
    await bot.start()
    try:
        chat = Chat(discord, "interrupt")
        text = " ".join(f"slow{i}" for i in range(200))
        key = f"k-interrupt-{backend}"
        llm.script(key, Text(text, chunk_size=5, delay_s=0.1))  # ~20 s
        asked = await chat.say(f"{key} talk for a long while")
        await discord.wait_for(lambda: chat.replies_to(int(asked["id"])))
        assert await bot.stop(timeout=30) == 0
    finally:
        await bot.kill()
    parts = chat.replies_to(int(asked["id"]))
    final = "\n".join(p["content"] for p in parts)
    assert final.startswith("slow0 slow1")
    assert final.endswith("Interrupted: I was restarting and could not finish. Please ask again.")
    assert not any(p["content"].endswith(INDICATOR) for p in parts)
