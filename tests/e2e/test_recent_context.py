"""Recent channel messages go with a question and are never stored; the bot's threads are
conversations that need no mention and get a title from the model (issue 21)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e.harness import INDICATOR, BotProcess, Chat, instructions
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.state import READ_MESSAGE_HISTORY
from tests.fakes.llm import ScriptedLLM, Text

TITLE = "Deploy Failure At Step Three"


@dataclass
class Threads:
    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    backend: str
    open_forum: int  # listed with respond_without_mention


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def threads(
    request: pytest.FixtureRequest, llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Threads]:
    backend = request.param
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp(f"recent-{backend}")
    open_forum = discord.add_forum(f"open-forum-{backend}")
    config = bot_config(llm, workdir, workdir / "calls.jsonl", backend, mcp={"servers": {}})
    config["discord"] = {
        "edit_interval_s": 0.5,
        "reply_in_thread": True,
        "thread_title": "generated",
        "recent_context": {"messages": 3, "max_age_s": 600},
        # Adding a reaction needs Read Message History, which one test here denies.
        "reactions": False,
        "channels": {open_forum: {"respond_without_mention": True}},
    }
    async with bot_running(discord, config, workdir) as bot:
        yield Threads(discord, llm, bot, backend, open_forum)


def stored_part(body: dict) -> str:
    """What a request carries besides its instructions: the conversation as stored (chat: the
    messages after the system one; Responses: the input items)."""
    if "input" in body:
        return json.dumps(body["input"], ensure_ascii=False)
    return json.dumps([m for m in body["messages"] if m["role"] != "system"], ensure_ascii=False)


def recent_block(body: dict) -> str:
    text = instructions(body)
    start, end = text.find("<recent_messages>"), text.find("</recent_messages>")
    return text[start:end] if start >= 0 else ""


def final_replies(discord: FakeDiscord, channel: int, to: int | None = None) -> list[dict]:
    """The bot's finished messages in `channel` (answering message `to`, if given)."""
    return [
        m
        for m in discord.messages(channel)
        if int(m["author"]["id"]) == discord.bot_user_id
        and (to is None or int((m.get("message_reference") or {}).get("message_id") or 0) == to)
        and not m["content"].endswith(INDICATOR)
    ]


def asked_with(requests: list[Any], words: str) -> Any:
    return next(r for r in requests if words in stored_part(r.body))


async def test_recent_messages_go_with_the_question_and_bot_threads_go_on_without_mention(
    threads: Threads,
) -> None:
    discord, llm, backend = threads.discord, threads.llm, threads.backend
    key, m = f"k-recent-{backend}", f"rc-{backend}"
    llm.script(key, Text("first answer"), Text(TITLE), Text("second answer"), Text("third"))
    chat = Chat(discord, f"recent-{backend}")
    bob = discord.add_user(f"bob-{backend}")
    carol = discord.add_user(f"carol-{backend}")
    await discord.send_message(chat.channel, bob, f"{m}-old too old to matter", age_s=3600)
    hint = await chat.say("")  # a bare mention: the bot's one-line hint lands in the channel
    await discord.wait_for(lambda: chat.replies_to(int(hint["id"])))
    await discord.send_message(chat.channel, bob, f"{m}-alpha the deploy failed at step 3")
    await discord.send_message(chat.channel, carol, f"{m}-beta I restarted the runner")
    asked = await chat.say(f"{key} what went wrong?")
    thread = int(asked["id"])  # a thread takes its starter message's id
    await discord.wait_for(lambda: final_replies(discord, thread) or None)

    first = asked_with(llm.requests_for(key), "what went wrong")
    block = recent_block(first.body)
    assert f"bob-{backend}" in block and f"carol-{backend}" in block  # each with its author
    assert block.index(f"{m}-alpha") < block.index(f"{m}-beta")  # oldest first
    assert f"{m}-old" not in json.dumps(first.body)  # older than max_age_s
    assert "Mention me" not in block  # the bot's own messages are left out
    assert f"{m}-alpha" not in stored_part(first.body)  # apart from the question

    # The thread is renamed once, with the model's title.
    await discord.wait_for(lambda: discord.world.channels[thread].name == TITLE or None)

    # The asker goes on in the thread without a mention; the thread's messages are its context.
    await discord.send_message(thread, bob, f"{m}-gamma the logs say disk full")
    follow = await discord.send_message(thread, chat.user, f"{key} follow-up one")
    await discord.wait_for(lambda: final_replies(discord, thread, int(follow["id"])) or None)
    second = asked_with(llm.requests_for(key), "follow-up one")
    block = recent_block(second.body)
    assert f"{m}-gamma" in block and f"bob-{backend}" in block
    assert "first answer" not in block  # the bot's answer is history, not context
    # The channel's context of the first turn is stored nowhere and not sent again.
    assert f"{m}-alpha" not in json.dumps(second.body)
    if backend == "responses":
        # The stored chain holds each request's input; instructions are not carried over.
        chained = llm.response_request(second.body["previous_response_id"])
        assert chained is not None and "what went wrong" in stored_part(chained)
        assert f"{m}-alpha" not in stored_part(chained)

    # Messages for someone else, and another user's question, are not for the bot.
    await discord.send_message(thread, chat.user, f"<@{bob}> {m}-for-bob see above")
    await discord.send_message(thread, bob, f"{m}-bob-asks a question of his own")
    again = await discord.send_message(thread, chat.user, f"{key} follow-up two")
    await discord.wait_for(lambda: final_replies(discord, thread, int(again["id"])) or None)
    third = asked_with(llm.requests_for(key), "follow-up two")
    block = recent_block(third.body)
    assert "follow-up one" not in block  # already answered in this conversation
    assert f"{m}-bob-asks" in block  # context, though not a question for the bot
    assert not [r for r in llm.requests_mentioning(f"{m}-for-bob") if r is not third]
    assert [r for r in llm.requests_mentioning(f"{m}-bob-asks") if r is not third] == []
    assert discord.world.channels[thread].name == TITLE
    assert discord.counters["channel_renames"] == 1


async def test_without_read_message_history_questions_are_answered_without_context(
    threads: Threads,
) -> None:
    discord, llm, backend = threads.discord, threads.llm, threads.backend
    key, m = f"k-recent-blind-{backend}", f"rcb-{backend}"
    llm.script(key, Text("one"), Text("title words here"), Text("two"), Text("title again"))
    chat = Chat(discord, f"blind-{backend}")
    discord.set_overwrite(chat.channel, discord.bot_user_id, deny=READ_MESSAGE_HISTORY)
    await discord.send_message(chat.channel, chat.user, f"{m}-context before")
    for n in (1, 2):
        asked = await chat.say(f"{key} question {n}")
        await discord.wait_for(lambda a=asked: final_replies(discord, int(a["id"])) or None)
    assert len(llm.requests_for(key)) >= 2
    assert llm.requests_mentioning(f"{m}-context") == []
    logged = threads.bot.log().count(f"recent context is off in channel {chat.channel}")
    assert logged == 1


async def test_a_forum_post_mentioning_the_bot_is_answered_in_the_post(chat_world: Any) -> None:
    discord, llm = chat_world.discord, chat_world.llm
    key = "k-forum-post"
    llm.script(key, Text("answered in the post"))
    forum = discord.add_forum("help-forum")
    asker = discord.add_user("forum-asker")
    starter = await discord.forum_post(
        forum, asker, "Build broken", f"<@{discord.bot_user_id}> {key} why is the build red?"
    )
    post = int(starter["id"])
    parts = await discord.wait_for(lambda: final_replies(discord, post, post) or None)
    assert [p["content"] for p in parts] == ["answered in the post"]
    assert "why is the build red" in stored_part(llm.requests_for(key)[0].body)


async def test_any_post_in_an_open_forum_is_answered_in_the_post(threads: Threads) -> None:
    """respond_without_mention on a forum: a post needs no mention; with reply_in_thread on,
    the answer still goes in the post (no thread is started from a post's message)."""
    discord, llm, backend = threads.discord, threads.llm, threads.backend
    key = f"k-open-forum-{backend}"
    llm.script(key, Text("the answer"), Text("unused title"))
    asker = discord.add_user(f"forum-user-{backend}")
    starter = await discord.forum_post(threads.open_forum, asker, "Question", f"{key} how?")
    post = int(starter["id"])
    parts = await discord.wait_for(lambda: final_replies(discord, post, post) or None)
    assert [p["content"] for p in parts] == ["the answer"]
