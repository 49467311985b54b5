"""A fresh bot with the Discord options a server operator changes: threads, DMs, scope, access."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e.harness import INDICATOR, BotProcess, Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.state import CREATE_PUBLIC_THREADS
from tests.fakes.llm import ScriptedLLM


@dataclass
class Options:
    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    blocked: int  # a blocked user
    admin: int  # in admin_ids: passes every block
    closed: int  # a blocked channel


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def options(
    llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Options]:
    discord = FakeDiscord()
    await discord.start()
    blocked = discord.add_user("blocked")
    admin = discord.add_user("admin")
    closed = discord.add_channel("closed")
    workdir = tmp_path_factory.mktemp("channel-options")
    config = bot_config(llm, workdir, workdir / "calls.jsonl", "chat", mcp={"servers": {}})
    config["discord"] = {
        "allow_dms": True,
        "scope": "thread",
        "reply_in_thread": True,
        "edit_interval_s": 0.5,
        "permissions": {
            "users": {"allow": [], "block": [blocked]},
            "channels": {"allow": [], "block": [closed]},
            "admin_ids": [admin],
        },
    }
    async with bot_running(discord, config, workdir) as bot:
        yield Options(discord, llm, bot, blocked, admin, closed)


def thread_answer(discord: FakeDiscord, message: dict) -> list[dict]:
    """The bot's final messages in the thread started from `message` (a thread takes its
    starter's id, as on Discord); [] when no thread was started from it."""
    thread = int(message["id"])
    if thread not in discord.world.channels:
        return []
    return [
        m
        for m in discord.messages(thread)
        if int(m["author"]["id"]) == discord.bot_user_id and not m["content"].endswith(INDICATOR)
    ]


async def test_a_mention_is_answered_in_a_thread_that_everyone_there_shares(
    options: Options,
) -> None:
    discord, llm = options.discord, options.llm
    chat = Chat(discord, "threads")
    key = "k-thread"
    llm.script(key)
    asked = await chat.say(f"{key} first question")
    answer = await discord.wait_for(lambda: thread_answer(discord, asked))
    assert [m["content"] for m in answer] == [f"echo: {key} first question"]
    assert chat.replies_to(int(asked["id"])) == []  # nothing in the channel itself
    # scope: thread — someone else in the thread continues the same conversation.
    other = discord.add_user("thread-friend")
    inside = await discord.send_message(
        int(asked["id"]), other, f"<@{discord.bot_user_id}> {key} second question"
    )
    await Chat(discord, channel=int(asked["id"])).answer_text(int(inside["id"]), "second")
    body = llm.requests_for(key)[-1].body
    assert any("first question" in str(m.get("content")) for m in body["messages"])


async def test_blocked_users_and_channels_get_nothing_but_an_admin_passes(
    options: Options,
) -> None:
    discord, llm = options.discord, options.llm
    chat = Chat(discord, "blocks")
    closed = Chat(discord, channel=options.closed)
    # Each message has its own marker, so only this test's requests are looked at.
    refused = [
        await chat.say("m-blocked-user let me in", user=options.blocked),
        await closed.say("m-closed-channel anyone here?"),
    ]
    as_admin = await closed.say("k-closed-admin admin here", user=options.admin)
    # Once the admin (sent last) is answered, the messages before were seen and skipped.
    answer = await discord.wait_for(lambda: thread_answer(discord, as_admin))
    assert [m["content"] for m in answer] == ["echo: k-closed-admin admin here"]
    for message in refused:
        assert thread_answer(discord, message) == [] and chat.replies_to(int(message["id"])) == []
    assert llm.requests_mentioning("m-blocked-user") == []
    assert llm.requests_mentioning("m-closed-channel") == []


async def test_no_thread_permission_means_no_answer_and_no_llm_call(options: Options) -> None:
    discord, llm = options.discord, options.llm
    no_threads = Chat(discord, "no-threads")
    await discord.deny_bot(no_threads.channel, CREATE_PUBLIC_THREADS)
    asked = await no_threads.say("m-thread-refused thread please")
    await options.bot.wait_logged(f"not answering in channel {no_threads.channel}")
    assert "lacks the Create Public Threads permission" in options.bot.log()
    assert llm.requests_mentioning("m-thread-refused") == []
    assert no_threads.bot_messages() == [] and thread_answer(discord, asked) == []


async def test_dms_are_answered_when_allowed(options: Options) -> None:
    discord = options.discord
    user = discord.add_user("dm-friend")
    dm = Chat(discord, "dm", channel=discord.add_dm_channel(user))
    said = await dm.say("k-options-dm hello in private", user=user, mention=False)
    text = await dm.answer_text(int(said["id"]), "private")
    assert text == "echo: k-options-dm hello in private"
