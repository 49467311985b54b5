"""End to end: each model gets its own provider's key; LLM__API_KEY never leaves its provider.

No `llm.base_url` here (that would send every model to one server with LLM__API_KEY), so each
model reaches the scripted server the way an operator's would reach its provider: the openai SDK
through OPENAI_BASE_URL, litellm's groq provider through GROQ_API_BASE, a mapping entry through
its own `base_url`. The server records each request's headers, so the keys are seen as sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.conftest import World, bot_config, stop_bot
from tests.e2e.harness import BotProcess, Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import Fault, ScriptedLLM, Text
from tests.fakes.llm.server import Recorded

PRIMARY_KEY = "sk-primary-only-for-openai"
KEYS = {
    "LLM__API_KEY": PRIMARY_KEY,
    "FALLBACK_KEY": "sk-fallback-own",
    "OWN_KEY": "sk-own-server",
    "GROQ_API_KEY": "gsk-groq-own",
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def keys_world(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[World]:
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp("model-keys")
    call_log = workdir / "calls.jsonl"
    config = bot_config(llm, workdir, call_log, "chat")
    own = {"api_key_env": "OWN_KEY", "base_url": llm.base_url}
    llm.serve("test-model-groq", "own", "keyed-fallback")
    config["llm"].update(
        base_url=None,
        models=["openai/test-model", "groq/test-model-groq", {"model": "openai/own", **own}],
        fallback_models=[
            {
                "model": "openai/keyed-fallback",
                "api_key_env": "FALLBACK_KEY",
                "base_url": llm.base_url,
            }
        ],
        max_retries=0,
    )
    config["mcp"]["servers"] = {}
    env = {**KEYS, "OPENAI_BASE_URL": llm.base_url, "GROQ_API_BASE": llm.base_url}
    bot = BotProcess(discord, config, workdir, env=env)
    try:
        await bot.start()
        yield World(discord=discord, llm=llm, bot=bot, call_log=call_log, backend="chat")
    finally:
        await stop_bot(bot, discord)


def bearer(request: Recorded) -> str:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return headers.get("authorization", "")


def carries_primary_key(request: Recorded) -> bool:
    return any(PRIMARY_KEY in value for value in request.headers.values())


async def test_a_fallback_with_its_own_key_and_server_never_gets_the_primary_key(
    keys_world: World,
) -> None:
    world = keys_world
    chat = Chat(world.discord, "keys-fallback")
    key = "k-keys-fallback"
    world.llm.fail_model("test-model", Fault(503), key=key)
    world.llm.script(key, Text("Answered by the keyed fallback."))
    asked = await chat.say(f"{key} hello")
    await chat.answer_text(int(asked["id"]), "answered by")
    primary, fallback = world.llm.requests_for(key)
    assert (primary.model, bearer(primary)) == ("test-model", f"Bearer {PRIMARY_KEY}")
    assert (fallback.model, bearer(fallback)) == ("keyed-fallback", "Bearer sk-fallback-own")
    assert not carries_primary_key(fallback)


async def test_another_providers_model_uses_its_own_variable_not_llm_api_key(
    keys_world: World,
) -> None:
    world = keys_world
    chat = Chat(world.discord, "keys-groq")
    key = "k-keys-groq"
    world.llm.script(key, Text("Groq here."))
    listing = await world.discord.slash_command("model", chat.user, chat.channel)
    listed = (await listing.wait_response())["data"]["content"]
    # Mapping entries are listed by their model's name.
    assert listed == "Models: `openai/test-model`, `groq/test-model-groq`, `openai/own`"
    chosen = await world.discord.slash_command(
        "model", chat.user, chat.channel, {"name": "groq/test-model-groq"}
    )
    assert "Using `groq/test-model-groq`" in (await chosen.wait_response())["data"]["content"]
    asked = await chat.say(f"{key} hello")
    assert await chat.answer_text(int(asked["id"]), "Groq") == "Groq here."
    [request] = world.llm.requests_for(key)
    assert (request.model, bearer(request)) == ("test-model-groq", "Bearer gsk-groq-own")
    assert not carries_primary_key(request)


async def test_a_model_command_choice_with_its_own_server_gets_only_its_key(
    keys_world: World,
) -> None:
    world = keys_world
    chat = Chat(world.discord, "keys-own")
    key = "k-keys-own"
    world.llm.script(key, Text("Own server here."))
    chosen = await world.discord.slash_command(
        "model", chat.user, chat.channel, {"name": "openai/own"}
    )
    assert "Using `openai/own`" in (await chosen.wait_response())["data"]["content"]
    asked = await chat.say(f"{key} hello")
    await chat.answer_text(int(asked["id"]), "Own server")
    [request] = world.llm.requests_for(key)
    assert (request.model, bearer(request)) == ("own", "Bearer sk-own-server")


async def test_check_names_each_models_key_variable_and_server_never_a_value(
    keys_world: World,
) -> None:
    # In a thread: the scripted server answering the check's calls runs on this loop.
    result = await asyncio.to_thread(keys_world.bot.cli, "check")
    out = result.stdout
    assert "Traceback" not in out + result.stderr
    assert not any(value in out + result.stderr for value in KEYS.values())
    rows = {line.split()[1]: line for line in out.splitlines() if line.strip()}
    port_url = keys_world.llm.base_url.removesuffix("/v1")
    assert "key LLM__API_KEY" in rows["llm:chat"], out
    assert "key GROQ_API_KEY" in rows["llm:model:groq/test-model-groq"], out
    assert "key OWN_KEY" in rows["llm:model:openai/own"], out
    assert "key FALLBACK_KEY" in rows["llm:fallback:openai/keyed-fallback"], out
    assert f"base URL {port_url}" in rows["llm:fallback:openai/keyed-fallback"], out
    assert "/v1" not in rows["llm:fallback:openai/keyed-fallback"], out
    # Each model answered with its own key (the scripted server checks none, so it says OK).
    assert all(rows[name].startswith("OK") for name in rows if name.startswith("llm:")), out
