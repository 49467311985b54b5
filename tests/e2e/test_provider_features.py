"""End to end on every provider path: refusals, pass-through params, prompt caching, the last
tool round, deny lists, safety_identifier, server-side MCP calls shown as they run, thought
signatures, and other bots' messages (issue 27).

The paths: chat through the openai SDK (`openai/...`), chat through litellm (`litellm_proxy/...`,
which forwards OpenAI's parameters as a LiteLLM proxy takes them), and the responses backend
with `state: server` and `state: local`. The model is Claude-named so litellm's price map has
cache-write prices for it; the scripted server does not care which model it plays.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import World, bot_config, bot_running
from tests.e2e.harness import Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import (
    McpCall,
    Refusal,
    ScriptedLLM,
    Stall,
    Text,
    ToolCall,
    UsageReport,
)
from tests.fakes.mcp_server import stdio_params

MODEL = "claude-sonnet-4-5"
PATHS = {
    "chat": ("chat", f"openai/{MODEL}", "server"),
    "chat-litellm": ("chat", f"litellm_proxy/{MODEL}", "server"),
    "responses": ("responses", MODEL, "server"),
    "responses-local": ("responses", MODEL, "local"),
}
CHAT_PARAMS = {
    "temperature": 0.3,
    "top_p": 0.9,
    "max_tokens": 400,
    "seed": 7,
    "stop": ["ZZZ-END"],
    "reasoning_effort": "low",
}
RESPONSES_PARAMS = {
    "temperature": 0.3,
    "top_p": 0.9,
    "max_output_tokens": 400,
    "seed": 7,
    "stop": ["ZZZ-END"],
    "reasoning": {"effort": "low"},
}
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=list(PATHS))
async def path_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[World]:
    path = request.param
    backend, model, state = PATHS[path]
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp(f"provider-{path}")
    call_log = workdir / "calls.jsonl"
    llm.serve(MODEL)
    config = bot_config(llm, workdir, call_log, backend)
    params = RESPONSES_PARAMS if backend == "responses" else CHAT_PARAMS
    config["llm"].update(
        model=model,
        models=[model],
        state=state,
        max_tool_rounds=2,
        prompt_cache="on",
        params=params,
    )
    auto = stdio_params(call_log, name="auto", resources=True)
    servers: dict[str, Any] = {
        "auto": {
            **auto,
            "require_approval": "never",
            # Deny wins: `record` and the bot's own reader are listed in both.
            "allowed_tools": ["echo", "add", "record", "read_resource"],
            "disallowed_tools": ["record", "read_resource"],
        }
    }
    if backend == "responses":
        servers["docs"] = {
            "url": "http://127.0.0.1:9/docs-mcp",
            "server_side": True,
            "require_approval": "never",
            "allowed_tools": ["search", "delete_page"],
            "disallowed_tools": ["delete_page"],
        }
        servers["wiki"] = {
            "url": "http://127.0.0.1:9/wiki-mcp",
            "server_side": True,
            "require_approval": "never",
            "disallowed_tools": ["purge"],
        }
    config["mcp"]["servers"] = servers
    async with bot_running(discord, config, workdir) as bot:
        yield World(discord=discord, llm=llm, bot=bot, call_log=call_log, backend=path)


def key_for(world: World, name: str) -> str:
    return f"k-pf-{name}-{world.backend}"


def is_chat(world: World) -> bool:
    return world.backend.startswith("chat")


def db(world: World) -> sqlite3.Connection:
    path = Path(world.bot.config["storage"]["path"])
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    return connection


def words(content: Any) -> str:
    """A message's text, whether a string or parts (a cache breakpoint makes it parts)."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def marks(body: dict[str, Any]) -> list[str]:
    """Where a request carries cache_control: `role:index` of each marked message."""
    found = []
    for n, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and "cache_control" in p for p in content
        ):
            found.append(f"{message['role']}:{n}")
    return found


# -- refusals ---------------------------------------------------------------------------------
async def test_a_refusal_is_the_answer_marked_stored_and_the_next_turn_goes_on(
    path_world: World,
) -> None:
    world = path_world
    if world.backend == "chat-litellm":
        pytest.skip("litellm's stream drops `delta.refusal` (litellm 1.110): no words to show")
    chat = Chat(world.discord, "refusal")
    key = key_for(world, "refuse")
    world.llm.script(key, Refusal("I can't help with that."), Text("Happy to help with tea."))
    asked = await chat.say(f"{key} how do I pick a lock")
    text = await chat.answer_text(int(asked["id"]), "refused")
    assert "I can't help with that." in text
    assert "-# ℹ️ The model refused this request." in text
    assert len(world.llm.requests_for(key)) == 1  # not an "empty answer" to retry
    asked = await chat.say(f"{key} then tell me about tea")
    assert "Happy to help with tea." in await chat.answer_text(int(asked["id"]), "tea.")
    second = world.llm.requests_for(key)[1].body
    if world.backend == "responses":
        assert second["previous_response_id"]  # the refusal's response goes on
    else:
        history = second.get("messages") or second.get("input")
        said = [m for m in history if m.get("role") == "assistant"]
        assert said and words(said[-1]["content"]) == "I can't help with that."


# -- llm.params -------------------------------------------------------------------------------
async def test_documented_params_reach_every_request(path_world: World) -> None:
    world = path_world
    chat = Chat(world.discord, "params")
    key = key_for(world, "params")
    world.llm.script(key, Text("tuned"))
    asked = await chat.say(f"{key} hello")
    await chat.answer_text(int(asked["id"]), "tuned")
    body = world.llm.requests_for(key)[0].body
    wanted = RESPONSES_PARAMS if world.backend.startswith("responses") else CHAT_PARAMS
    assert {name: body.get(name) for name in wanted} == wanted
    assert body["model"] == MODEL and body["stream"] is True


# -- the last tool round ----------------------------------------------------------------------
async def test_the_last_tool_round_sends_tool_choice_none(path_world: World) -> None:
    world = path_world
    chat = Chat(world.discord, "rounds")
    key = key_for(world, "rounds")
    echo = ToolCall("auto__echo", {"text": "again"})
    world.llm.script(key, echo, echo, Text("Enough tools."))
    asked = await chat.say(f"{key} loop")
    await chat.answer_text(int(asked["id"]), "Enough tools.")
    sent = world.llm.requests_for(key)
    assert [r.body.get("tool_choice") for r in sent] == [None, None, "none"]
    assert all(r.body.get("tools") for r in sent)


# -- disallowed_tools -------------------------------------------------------------------------
async def test_disallowed_tools_are_never_offered(path_world: World) -> None:
    world = path_world
    chat = Chat(world.discord, "deny")
    key = key_for(world, "deny")
    world.llm.script(key, Text("listed"))
    asked = await chat.say(f"{key} what can you do")
    await chat.answer_text(int(asked["id"]), "listed")
    tools = world.llm.requests_for(key)[0].body["tools"]
    if is_chat(world):
        names = {t["function"]["name"] for t in tools}
        assert names == {"auto__echo", "auto__add"}
        return
    assert {t["name"] for t in tools if t["type"] == "function"} == {"auto__echo", "auto__add"}
    server_side = {t["server_label"]: t for t in tools if t["type"] == "mcp"}
    assert server_side["docs"]["allowed_tools"] == ["search"]
    # No deny list in the API and no list of the server's tools: none rather than all.
    assert server_side["wiki"]["allowed_tools"] == []


# -- safety_identifier ------------------------------------------------------------------------
async def test_responses_send_a_keyed_safety_identifier_and_user_as_before(
    path_world: World,
) -> None:
    world = path_world
    key = key_for(world, "safety")
    world.llm.script(key, Text("one"), Text("two"), Text("three"))
    first, other = Chat(world.discord, "safety"), Chat(world.discord, "safety-other")
    for chat, word in ((first, "one"), (first, "two"), (other, "three")):
        asked = await chat.say(f"{key} say {word}")
        await chat.answer_text(int(asked["id"]), word)
    bodies = [r.body for r in world.llm.requests_for(key)]
    users = [b.get("user") for b in bodies]
    assert users[0] and users[0] == users[1] != users[2]  # `user` unchanged: proxies key on it
    if is_chat(world):
        assert all("safety_identifier" not in b for b in bodies)
        return
    ids = [b.get("safety_identifier") for b in bodies]
    assert all(HEX32.match(i or "") for i in ids)
    assert ids[0] == ids[1] != ids[2]
    assert ids[0] != users[0] and str(first.user) not in json.dumps(ids)


# -- server-side MCP calls shown while they run -----------------------------------------------
async def test_a_server_side_mcp_call_shows_running_then_done(path_world: World) -> None:
    world = path_world
    if is_chat(world):
        pytest.skip("server-side MCP tools exist only on the responses backend")
    chat = Chat(world.discord, "mcp-running")
    key = key_for(world, "running")
    search = McpCall("search", {"q": "tea"}, output="3 hits", server_label="docs")
    world.llm.script(key, Stall(4, during=search), Text("Found three."))
    asked = await chat.say(f"{key} search the docs")

    def running() -> str | None:
        text = "\n".join(m["content"] for m in chat.replies_to(int(asked["id"])))
        return text if "`docs.search` running…" in text else None

    await world.discord.wait_for(running, timeout=20)
    text = await chat.answer_text(int(asked["id"]), "`docs.search` done")
    assert "running…" not in text


# -- prompt caching ---------------------------------------------------------------------------
async def test_prompt_cache_marks_and_keys_each_conversation(path_world: World) -> None:
    world = path_world
    key = key_for(world, "cache")
    world.llm.script(key, Text("first answer"), Text("second answer"), Text("elsewhere"))
    chat, other = Chat(world.discord, "cache"), Chat(world.discord, "cache-other")
    for where, word in ((chat, "first"), (chat, "second"), (other, "elsewhere")):
        asked = await where.say(f"{key} {word}")
        await where.answer_text(int(asked["id"]), word)
    bodies = [r.body for r in world.llm.requests_for(key)]
    keys = [b.get("prompt_cache_key") for b in bodies]
    assert all(HEX32.match(k or "") for k in keys), keys
    assert keys[0] == keys[1] != keys[2]  # one key per conversation, for every turn
    assert not any(str(i) in json.dumps(keys) for i in (chat.channel, chat.user))
    if not is_chat(world):
        assert "cache_control" not in json.dumps(bodies)
        return
    assert marks(bodies[0]) == ["system:0"]  # nothing stored yet
    # The system prompt and the last stored message before the question: 2 of the 4 allowed.
    assert marks(bodies[1]) == ["system:0", "assistant:2"]
    assert bodies[1]["messages"][2]["content"][-1]["text"] == "first answer"


async def test_cache_writes_are_counted_priced_and_shown(path_world: World) -> None:
    world = path_world
    chat = Chat(world.discord, "cache-writes")
    key = key_for(world, "writes")
    world.llm.report_usage(key, UsageReport(1000, 50, cached=200, cache_write=300))
    world.llm.script(key, Text("cached"))
    asked = await chat.say(f"{key} hello")
    await chat.answer_text(int(asked["id"]), "cached")
    row = (
        db(world)
        .execute(
            "SELECT input_tokens, cached_input_tokens, cache_write_tokens, cost_usd FROM usage"
            " WHERE user_id = ?",
            (chat.user,),
        )
        .fetchone()
    )
    price = litellm_prices(MODEL)
    cost = (
        500 * price["input_cost_per_token"]
        + 200 * price["cache_read_input_token_cost"]
        + 300 * price["cache_creation_input_token_cost"]
        + 50 * price["output_cost_per_token"]
    )
    assert price["cache_creation_input_token_cost"] > price["input_cost_per_token"]
    assert (row["input_tokens"], row["cached_input_tokens"], row["cache_write_tokens"]) == (
        1000,
        200,
        300,
    )
    assert row["cost_usd"] == pytest.approx(cost)
    interaction = await world.discord.slash_command("status", chat.user, chat.channel, {})
    status = (await interaction.wait_response())["data"]["content"]
    assert "1,000 input tokens (200 cached, 300 written to the cache)" in status
    assert f"${cost:.4f}" in status
    await world.bot.wait_logged("cache_write_tokens=300")


def litellm_prices(model: str) -> dict[str, float]:
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    prices = json.loads((folder / "model_prices_and_context_window_backup.json").read_text())
    return prices[model]


# -- Gemini thought signatures ----------------------------------------------------------------
async def test_thought_signatures_go_back_with_the_call(path_world: World) -> None:
    world = path_world
    if not is_chat(world):
        pytest.skip("thought signatures ride on chat tool calls (litellm's Gemini translation)")
    chat = Chat(world.discord, "signatures")
    key = key_for(world, "signed")
    call = ToolCall("auto__echo", {"text": "signed"}, thought_signature="c2lnLWdlbWluaQ==")
    world.llm.script(key, call, Text("done with it"), Text("later"))
    asked = await chat.say(f"{key} use a tool")
    await chat.answer_text(int(asked["id"]), "done with it")
    asked = await chat.say(f"{key} and now")
    await chat.answer_text(int(asked["id"]), "later")
    within, later = (r.body["messages"] for r in world.llm.requests_for(key)[1:3])
    sent = next(m for m in within if m.get("tool_calls"))["tool_calls"][0]
    assert sent["provider_specific_fields"] == {"thought_signature": "c2lnLWdlbWluaQ=="}
    # Needed within the turn only; the stored conversation stays provider-neutral.
    kept = next(m for m in later if m.get("tool_calls"))["tool_calls"][0]
    assert "provider_specific_fields" not in kept


# -- other bots -------------------------------------------------------------------------------
async def test_a_mention_from_another_bot_is_not_answered(path_world: World) -> None:
    world = path_world
    chat = Chat(world.discord, "other-bot")
    key = key_for(world, "botmention")
    other = world.discord.add_user("another-bot", bot=True)
    before = await chat.say(f"{key} hello from a bot", user=other)
    # A person's message after it is answered: by then the bot's message was seen and passed.
    world.llm.script(key, Text("for the person"))
    asked = await chat.say(f"{key} hello from a person")
    await chat.answer_text(int(asked["id"]), "for the person")
    assert chat.replies_to(int(before["id"])) == []
    assert world.llm.requests_mentioning("hello from a bot") == []
