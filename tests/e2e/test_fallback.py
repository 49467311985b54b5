"""End to end: llm.fallback_models on both backends and both chat paths (issue 12)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import World, bot_config, bot_running
from tests.e2e.harness import Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import Cut, Fault, McpCall, ScriptedLLM, Text

PREFIX = {"chat": "openai/", "chat-litellm": "hosted_vllm/", "responses": ""}


@pytest_asyncio.fixture(
    scope="module", loop_scope="session", params=["chat", "chat-litellm", "responses"]
)
async def fallback_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[World]:
    """A bot whose model falls back to `test-model-fallback`: its own process, because the
    shared worlds' tests expect a down model to fail their turn. No MCP servers: not needed."""
    backend = request.param
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp(f"fallback-{backend}")
    call_log = workdir / "calls.jsonl"
    config = bot_config(llm, workdir, call_log, backend)
    prefix = PREFIX[backend]
    llm.serve("test-model-fallback")
    config["llm"].update(fallback_models=[f"{prefix}test-model-fallback"], max_retries=1)
    config["mcp"]["servers"] = {}
    async with bot_running(discord, config, workdir) as bot:
        yield World(discord=discord, llm=llm, bot=bot, call_log=call_log, backend=backend)


def usage_models(world: World, user: int) -> list[str]:
    path = Path(world.bot.config["storage"]["path"])
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT model FROM usage WHERE user_id = ?", (user,))
        return [row[0] for row in rows]


async def test_a_primary_failing_every_attempt_is_answered_by_the_fallback(
    fallback_world: World,
) -> None:
    world = fallback_world
    prefix = PREFIX[world.backend]
    chat = Chat(world.discord, "fallback")
    key = f"k-fallback-{world.backend}"
    world.llm.fail_model("test-model", Fault(500), key=key)
    world.llm.script(key, Text("The fallback model answers."))
    asked = await chat.say(f"{key} hello")
    text = await chat.answer_text(int(asked["id"]), "answered by")
    assert text == (
        "The fallback model answers.\n"
        f"-# ℹ️ answered by `{prefix}test-model-fallback` (`{prefix}test-model` was unavailable)"
    )
    # Both models were asked: the primary on every attempt (1 + max_retries), then the fallback.
    models = [r.model for r in world.llm.requests_for(key)]
    assert models == ["test-model", "test-model", "test-model-fallback"]
    # Usage and the turn's log line name the model that answered.
    assert usage_models(world, chat.user) == [f"{prefix}test-model-fallback"]
    conversation = f"conversation={world.discord.guild_id}:{chat.channel}:{chat.user} "
    lines = await world.discord.wait_for(
        lambda: [line for line in world.bot.log().splitlines() if conversation in line],
        timeout=10,
    )
    assert f"model={prefix}test-model-fallback " in lines[0], lines


async def test_a_refused_request_does_not_fall_through(fallback_world: World) -> None:
    world = fallback_world
    chat = Chat(world.discord, "no-fallback")
    key = f"k-no-fallback-{world.backend}"
    world.llm.script(key, Fault(400, message="malformed"), Text("never shown"))
    asked = await chat.say(f"{key} hello")
    text = await chat.answer_text(int(asked["id"]), "⚠️")
    assert "refused the request (400)" in text and "answered by" not in text
    # One request: no retry on the primary, none to the fallback model.
    assert [r.model for r in world.llm.requests_for(key)] == ["test-model"]


async def test_a_server_side_tool_cut_off_while_running_goes_to_no_other_model(
    fallback_world: World,
) -> None:
    """Another model would be handed the same question and let the server run the tool again."""
    world = fallback_world
    if world.backend != "responses":
        pytest.skip("server-side MCP tools exist on the responses backend only")
    chat = Chat(world.discord, "mcp-cut-fallback")
    key = "k-mcp-cut-fallback"
    started = McpCall("send_email", {"to": "ann"}, output="sent", server_label="mail")
    # Every try on the primary breaks the same way; the fallback model would answer.
    world.llm.script(key, Cut(during=started), Cut(during=started), Text("Sent again."))
    asked = await chat.say(f"{key} send the mail")
    parts = await chat.answer(int(asked["id"]), lambda t: "may have run" in t or "again" in t)
    text = "\n".join(p["content"] for p in parts)
    # One request: no retry on the primary, none to the fallback model.
    assert [r.model for r in world.llm.requests_for(key)] == ["test-model"]
    assert "`mail.send_email`" in text.splitlines()[-1] and "may have run" in text, text
    assert "answered by" not in text
