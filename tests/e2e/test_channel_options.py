"""A fresh bot with the Discord options a server operator changes: threads, DMs, scope, access."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.state import CREATE_PUBLIC_THREADS
from tests.fakes.llm import ScriptedLLM


async def test_threads_dms_channel_scope_and_access_lists(llm: ScriptedLLM, tmp_path: Path) -> None:
    discord = FakeDiscord()
    await discord.start()
    blocked = discord.add_user("blocked")
    admin = discord.add_user("admin")
    closed = discord.add_channel("closed")
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", mcp={"servers": {}})
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
    bot = BotProcess(discord, config, tmp_path)
    try:
        await bot.start()
        chat = Chat(discord, "threads")
        key = "k-thread"
        llm.script(key)
        # A channel mention is answered in a new thread named after the question.
        asked = await chat.say(f"{key} first question")
        thread = await discord.wait_for(
            lambda: (
                discord.counters["threads_created"]
                and [
                    m
                    for m in discord.world.messages.values()
                    if m["author"]["id"] == str(discord.bot_user_id)
                    and m["channel_id"] != str(chat.channel)
                    and not m["content"].endswith(" ▌")
                ]
            )
        )
        thread_id = int(thread[0]["channel_id"])
        assert thread[0]["content"] == f"echo: {key} first question"
        assert chat.replies_to(int(asked["id"])) == []
        # scope: thread — everyone in the thread shares one conversation.
        other = discord.add_user("thread-friend")
        inside = await discord.send_message(
            thread_id, other, f"<@{discord.bot_user_id}> {key} second question"
        )
        await discord.wait_for(
            lambda: [
                m
                for m in discord.messages(thread_id)
                if (m.get("message_reference") or {}).get("message_id") == inside["id"]
            ]
        )
        body = llm.requests_for(key)[-1].body
        assert any("first question" in str(m.get("content")) for m in body["messages"])

        # Blocked user and blocked channel: no answer, no LLM call; an admin passes anyway.
        # Each message has its own marker, so only this test's requests are looked at.
        await chat.say("k-thread-blocked-user let me in", user=blocked)
        blocked_channel = Chat(discord, channel=closed)
        await blocked_channel.say("k-thread-closed-channel anyone here?")
        as_admin = await blocked_channel.say("k-thread-closed-admin admin here", user=admin)
        await discord.wait_for(
            lambda: [
                m
                for m in discord.world.messages.values()
                if m["author"]["id"] == str(discord.bot_user_id)
                and "admin here" in m["content"]
                and not m["content"].endswith(" ▌")
            ]
        )
        assert len(llm.requests_mentioning("k-thread-closed-admin")) == 1
        assert llm.requests_mentioning("k-thread-blocked-user") == []
        assert llm.requests_mentioning("k-thread-closed-channel") == []
        assert as_admin

        # reply_in_thread where the bot may not create threads: no answer, no LLM call.
        no_threads = Chat(discord, "no-threads")
        await discord.deny_bot(no_threads.channel, CREATE_PUBLIC_THREADS)
        await no_threads.say("k-thread-refused thread please")
        await bot.wait_logged(f"not answering in channel {no_threads.channel}")
        assert "lacks the Create Public Threads permission" in bot.log()
        assert llm.requests_mentioning("k-thread-refused") == []

        # DMs are answered when allow_dms is on.
        dm = discord.add_dm_channel(other)
        said = await discord.send_message(dm, other, f"{key} hello in private")
        answer = await discord.wait_for(
            lambda: [
                m
                for m in discord.messages(dm)
                if m["author"]["id"] == str(discord.bot_user_id)
                and "private" in m["content"]
                and not m["content"].endswith(" ▌")
            ]
        )
        assert answer[0]["content"] == f"echo: {key} hello in private" and said
        assert await bot.stop() == 0
    finally:
        await bot.kill()
        await discord.stop()
