"""Mentions missed while the bot had no gateway session are answered once: at most 20 per
catch-up, after a restart and after a session that had to begin afresh (issue 23)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text

OFFLINE_LINE = "-# asked while I was offline"


def _config(llm: ScriptedLLM, tmp_path: Path) -> dict[str, Any]:
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", mcp={"servers": {}})
    config["discord"]["catch_up_s"] = 600
    return config


def _answered_ids(log: str) -> list[int]:
    """The message ids a catch-up's log line names, in the order it answers them."""
    found = re.search(r"catch-up: \d+ question\(s\)[^\n]*\(message ids ([\d, ]+)\)", log)
    assert found, log[-3000:]
    return [int(i) for i in found.group(1).split(", ")]


async def test_more_than_20_missed_mentions_the_20_newest_are_answered_each_once_oldest_first(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """23 mentions by 23 people over three channels where the bot had answered: the 20 newest
    are answered, each once, oldest first across the channels; the 3 oldest are not."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path)
    chats = [Chat(discord, f"catch-up-cap-{c}") for c in range(3)]
    for c in range(3):
        llm.script(f"k-cap-before-{c}", Text(f"Before {c}."))
    for n in range(23):
        llm.script(f"k-cap-{n}-x", Text(f"Caught up {n}."))
    try:
        async with running(BotProcess(discord, config, tmp_path)):
            for c, chat in enumerate(chats):
                before = await chat.say(f"k-cap-before-{c} hello")
                await chat.answer_text(int(before["id"]), f"Before {c}.")
        asked = []
        for n in range(23):
            chat = chats[n % 3]
            user = discord.add_user(f"catch-up-cap-user-{n}")
            asked.append((chat, await chat.say(f"k-cap-{n}-x are you back?", user=user)))
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            for n in range(3, 23):
                chat, message = asked[n]
                text = await chat.answer_text(int(message["id"]), f"Caught up {n}.", timeout=90)
                assert text.splitlines()[0] == OFFLINE_LINE, text
            await bot.wait_logged("catch-up: 20 question(s)")
            order = _answered_ids(bot.log(this_run=True))
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            await bot.wait_logged("catch-up: 0 question(s)")
    finally:
        await discord.stop()
    assert order == [int(message["id"]) for _, message in asked[3:]]
    for n, (chat, message) in enumerate(asked):
        answered = 1 if n >= 3 else 0
        assert len(llm.requests_for(f"k-cap-{n}-x")) == answered, n
        assert len(chat.replies_to(int(message["id"]))) == answered, n


async def test_a_mention_posted_while_the_gateway_session_had_to_begin_afresh_is_answered_once(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """The bot runs; Discord ends its session (op 9, no RESUME); a mention posted before the new
    session exists reaches the bot only through the channel's history. After the new READY it
    is answered once, with the offline line; two more new sessions answer nothing more (the
    answer is slow, so they come while it streams, as a rule: its claim in the ledger, not its
    end, is what keeps them off)."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path)
    chat = Chat(discord, "catch-up-reidentify")
    slow = " ".join(f"late{i}" for i in range(40))
    llm.script("k-reid-before", Text("Before the new session."))
    llm.script(
        "k-reid-missed",
        Text(f"Caught up after the new session. {slow}", chunk_size=10, delay_s=0.4),
    )
    try:
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            before = await chat.say("k-reid-before hello")
            await chat.answer_text(int(before["id"]), "Before the new session.")
            discord.gateway.down = True  # the new session waits until the mention is in
            await discord.invalidate_bot_session()
            missed = await chat.say("k-reid-missed are you still there?")
            discord.gateway.down = False
            await discord.wait_for(lambda: discord.counters["identify"] == 2, timeout=60)
            # The answer has begun: the next sessions begin while it streams.
            await discord.wait_for(lambda: chat.replies_to(int(missed["id"])), timeout=30)
            for identified in (3, 4):
                await discord.invalidate_bot_session()
                await discord.wait_for(
                    lambda n=identified: discord.counters["identify"] == n, timeout=60
                )
            text = await chat.answer_text(int(missed["id"]), slow, timeout=60)
            assert text.splitlines()[0] == OFFLINE_LINE, text
            await discord.wait_for(
                lambda: bot.log(this_run=True).count("catch-up: ") == 4, timeout=60
            )
            log = bot.log(this_run=True)
    finally:
        await discord.stop()
    assert re.findall(r"catch-up: (\d+) question", log) == ["0", "1", "0", "0"], log[-3000:]
    assert discord.counters["resume"] == 0
    assert len(llm.requests_for("k-reid-missed")) == 1
    assert len(chat.replies_to(int(missed["id"]))) == 1
