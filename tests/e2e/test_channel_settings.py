"""discord.channels: a channel with its own persona and model, and one that needs no mention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e.harness import Chat, instructions
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM

PERSONA = "You are the support bot of the Foo project."


@dataclass
class Channels:
    discord: FakeDiscord
    llm: ScriptedLLM
    backend: str
    open: Chat
    persona: Chat
    plain: Chat


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def channels(
    request: pytest.FixtureRequest, llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Channels]:
    backend = request.param
    discord = FakeDiscord()
    await discord.start()
    world = Channels(
        discord,
        llm,
        backend,
        open=Chat(discord, "open-chan"),
        persona=Chat(discord, "persona-chan"),
        plain=Chat(discord, "plain-chan"),
    )
    workdir = tmp_path_factory.mktemp(f"channels-{backend}")
    config = bot_config(llm, workdir, workdir / "calls.jsonl", backend, mcp={"servers": {}})
    prefix = "openai/" if backend == "chat" else ""
    llm.serve("persona-model")
    config["discord"]["channels"] = {
        world.open.channel: {"respond_without_mention": True},
        world.persona.channel: {"system_prompt": PERSONA, "model": f"{prefix}persona-model"},
    }
    async with bot_running(discord, config, workdir):
        yield world


async def test_an_open_channel_answers_without_a_mention(channels: Channels) -> None:
    key = f"k-open-{channels.backend}"
    chat = channels.open
    asked = await chat.say(f"{key} plain question", mention=False)
    assert "echo" in await chat.answer_text(int(asked["id"]), "echo")

    other = channels.discord.add_user("someone-else")
    aside = await chat.say(f"{key}-aside <@{other}> can you look?", mention=False)
    elsewhere = await channels.plain.say(f"{key}-elsewhere plain question", mention=False)
    # A mention of the bot after both: once it is answered, the two before were seen and skipped.
    marker = await chat.say(f"{key}-marker now you", mention=True)
    await chat.answer_text(int(marker["id"]), "echo")
    assert chat.replies_to(int(aside["id"])) == []
    assert channels.plain.replies_to(int(elsewhere["id"])) == []
    assert channels.llm.requests_for(f"{key}-aside") == []
    assert channels.llm.requests_for(f"{key}-elsewhere") == []


async def test_a_channel_persona_and_model_apply_there_only(channels: Channels) -> None:
    key = f"k-persona-{channels.backend}"
    channels.llm.script(key)
    for chat in (channels.persona, channels.plain):
        asked = await chat.say(f"{key} who are you?")
        await chat.answer_text(int(asked["id"]), "echo")
    there, elsewhere = (r.body for r in channels.llm.requests_for(key))
    assert PERSONA in instructions(there) and there["model"] == "persona-model"
    assert PERSONA not in instructions(elsewhere) and elsewhere["model"] == "test-model"
