"""discord.channels: a channel with its own persona and model, and one that needs no mention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e.harness import Chat, instructions
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text

PERSONA = "You are the support bot of the Foo project."
THREAD_PERSONA = "You are the release thread's bot."


@dataclass
class Channels:
    discord: FakeDiscord
    llm: ScriptedLLM
    backend: str
    open: Chat
    persona: Chat
    plain: Chat
    persona_thread: Chat  # a thread of the persona channel, not listed itself
    listed_thread: Chat  # a thread of the persona channel with its own entry


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def channels(
    request: pytest.FixtureRequest, llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Channels]:
    backend = request.param
    discord = FakeDiscord()
    await discord.start()
    persona = Chat(discord, "persona-chan")
    world = Channels(
        discord,
        llm,
        backend,
        open=Chat(discord, "open-chan"),
        persona=persona,
        plain=Chat(discord, "plain-chan"),
        persona_thread=Chat(discord, "follows", discord.add_thread(persona.channel, "follows")),
        listed_thread=Chat(discord, "release", discord.add_thread(persona.channel, "release")),
    )
    workdir = tmp_path_factory.mktemp(f"channels-{backend}")
    config = bot_config(llm, workdir, workdir / "calls.jsonl", backend, mcp={"servers": {}})
    prefix = "openai/" if backend == "chat" else ""
    llm.serve("persona-model")
    config["discord"]["channels"] = {
        world.open.channel: {"respond_without_mention": True},
        world.persona.channel: {"system_prompt": PERSONA, "model": f"{prefix}persona-model"},
        world.listed_thread.channel: {"system_prompt": THREAD_PERSONA},
    }
    async with bot_running(discord, config, workdir):
        yield world


async def test_an_open_channel_answers_without_a_mention(channels: Channels) -> None:
    b = channels.backend
    key = f"k-open-{b}"
    chat = channels.open
    asked = await chat.say(f"{key} plain question", mention=False)
    assert "echo" in await chat.answer_text(int(asked["id"]), "echo")

    other = channels.discord.add_user("someone-else")
    theirs = await chat.say(f"k-open-theirs-{b} my own question", user=other, mention=False)
    await chat.answer_text(int(theirs["id"]), "echo")  # another person's question is answered
    aside = await chat.say(f"m-open-aside-{b} <@{other}> can you look?", mention=False)
    reply = await chat.say(f"m-open-reply-{b} me too", mention=False, reply_to=int(theirs["id"]))
    elsewhere = await channels.plain.say(f"m-open-elsewhere-{b} plain question", mention=False)
    # A mention of the bot after them: once it is answered, those before were seen and skipped.
    last = await chat.say(f"k-open-last-{b} now you", mention=True)
    await chat.answer_text(int(last["id"]), "echo")
    for skipped, where in ((aside, chat), (reply, chat), (elsewhere, channels.plain)):
        assert where.replies_to(int(skipped["id"])) == []
    for marker in ("aside", "reply", "elsewhere"):
        assert channels.llm.requests_mentioning(f"m-open-{marker}-{b}") == []


async def test_a_channel_persona_and_model_apply_there_only(channels: Channels) -> None:
    key = f"k-persona-{channels.backend}"
    channels.llm.script(key)
    for chat in (channels.persona, channels.plain):
        asked = await chat.say(f"{key} who are you?")
        await chat.answer_text(int(asked["id"]), "echo")
    there, elsewhere = (r.body for r in channels.llm.requests_for(key))
    assert PERSONA in instructions(there) and there["model"] == "persona-model"
    assert PERSONA not in instructions(elsewhere) and elsewhere["model"] == "test-model"


async def test_a_forward_is_answered_in_an_open_channel_with_its_text_and_files(
    channels: Channels,
) -> None:
    key = f"k-open-fwd-{channels.backend}"
    chat = channels.open
    other = channels.discord.add_user("fwd-writer")
    notes = {"filename": "notes.txt", "content": "fwd-file-marker", "content_type": "text/plain"}
    original = await channels.plain.say(
        f"{key} the nightly backup is 3 hours late", user=other, mention=False, attachments=[notes]
    )
    channels.llm.script(key, Text("Check the backup host's disk."))
    forward = await channels.discord.forward_message(chat.channel, chat.user, int(original["id"]))
    await chat.answer_text(int(forward["id"]), "backup host")
    sent = channels.llm.requests_for(key)[0].body
    assert f"[forwarded message] {key} the nightly backup is 3 hours late" in str(sent)
    assert "fwd-file-marker" in str(sent)


async def test_a_thread_follows_its_channels_entry_unless_listed_itself(channels: Channels) -> None:
    key = f"k-thread-persona-{channels.backend}"
    channels.llm.script(key)
    for chat in (channels.persona_thread, channels.listed_thread):
        asked = await chat.say(f"{key} who are you?")
        await chat.answer_text(int(asked["id"]), "echo")
    follows, listed = (r.body for r in channels.llm.requests_for(key))
    assert PERSONA in instructions(follows) and follows["model"] == "persona-model"
    # Listed itself: its own entry wins whole, with the defaults for what it does not set.
    assert THREAD_PERSONA in instructions(listed) and PERSONA not in instructions(listed)
    assert listed["model"] == "test-model"


async def test_an_open_channel_leaves_a_reply_to_someone_else_alone(channels: Channels) -> None:
    key = f"k-open-reply-{channels.backend}"
    chat = channels.open
    other = channels.discord.add_user("open-reply-other")
    channels.llm.script(key)
    channels.llm.script(f"{key}-aside")
    theirs = await chat.say(f"<@{chat.user}> have you seen the logs?", user=other, mention=False)
    # A reply pings its author unless the client's @ON is off: then only the reference says
    # who it is for.
    asides = [
        await chat.say(f"{key}-aside yes", mention=False, reply_to=int(theirs["id"])),
        await chat.say(
            f"{key}-aside this morning", mention=False, reply_to=int(theirs["id"]), ping_reply=False
        ),
    ]
    # A mention of the bot after them: once that is answered, the replies were seen and skipped.
    marker = await chat.say(f"{key} now you", mention=True)
    await chat.answer_text(int(marker["id"]), "echo")
    assert all(chat.replies_to(int(aside["id"])) == [] for aside in asides)
    assert channels.llm.requests_for(f"{key}-aside") == []
    assert len(channels.llm.requests_for(key)) == 1
