"""End to end: MCP tools run by policy, approval buttons, failures of tools and servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import World, bot_config
from tests.e2e.harness import BotProcess, Chat, buttons, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import read_calls


@pytest.fixture(params=["chat", "chat-litellm", "responses"])
def world(request: pytest.FixtureRequest) -> World:
    """Here also the chat backend's litellm path (a provider only litellm speaks)."""
    return request.getfixturevalue(f"{request.param.replace('-', '_')}_world")


def tool_outputs(body: dict) -> list[str]:
    """Tool results the LLM request carried back to the model, for either API."""
    if "messages" in body:
        return [m["content"] for m in body["messages"] if m.get("role") == "tool"]
    items = body.get("input") or []
    return [
        i["output"]
        for i in items
        if isinstance(i, dict) and i.get("type") == "function_call_output"
    ]


def calls_of(world: World, tool: str, marker: str) -> list[dict]:
    return [c for c in read_calls(world.call_log) if c["tool"] == tool and marker in json.dumps(c)]


async def click(world: World, prompt: dict, action: str, user: int) -> dict:
    custom_id = next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith(action))
    interaction = await world.discord.click_button(int(prompt["id"]), custom_id, user)
    return await interaction.wait_response()


async def test_never_tools_run_unasked_stdio_time_server(world: World) -> None:
    chat = Chat(world.discord, "time")
    key = f"k-time-{world.backend}"
    world.llm.script(
        key, [ToolCall("time__get_current_time", {"timezone": "UTC"})], Text("It is tool time.")
    )
    asked = await chat.say(f"{key} what time is it?")
    text = await chat.answer_text(int(asked["id"]), "It is tool time.")
    assert "✅ `time.get_current_time` done" in text
    outputs = tool_outputs(world.llm.requests_for(key)[1].body)
    assert len(outputs) == 1 and "UTC" in outputs[0]
    assert not [m for m in chat.bot_messages() if "Approval needed" in m["content"]]


async def test_never_tool_over_http_with_headers(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "http")
    key = "k-http"
    world.llm.script(key, [ToolCall("web__echo", {"text": "over-http-7"})], Text("Echoed."))
    asked = await chat.say(f"{key} echo something")
    text = await chat.answer_text(int(asked["id"]), "Echoed.")
    assert "✅ `web.echo` done" in text
    assert tool_outputs(world.llm.requests_for(key)[1].body) == ["over-http-7"]


async def test_approve_runs_the_tool_exactly_once(world: World) -> None:
    chat = Chat(world.discord, "approve")
    key = f"k-approve-{world.backend}"
    note = f"approved-note-{world.backend}"
    world.llm.script(key, [ToolCall("gated__record", {"note": note})], Text("Recorded it."))
    asked = await chat.say(f"{key} record please")
    prompt = await chat.prompt()
    assert (
        "gated" in prompt["content"] and "record" in prompt["content"] and note in prompt["content"]
    )
    assert [b["custom_id"].rsplit(":", 1)[1] for b in buttons(prompt)] == [
        "approve",
        "deny",
        "always",
        "edit",
        "reason",
    ]
    assert calls_of(world, "record", note) == []  # nothing runs before the click
    response = await click(world, prompt, "approve", chat.user)
    assert response["type"] == 7
    assert all(b["disabled"] for b in buttons(response["data"]))
    assert f"Approved by <@{chat.user}>" in response["data"]["content"]
    await chat.answer_text(int(asked["id"]), "Recorded it.")
    # The answer goes on below the prompt, where the person who clicked is looking.
    first, *_, last = chat.replies_to(int(asked["id"]))
    assert int(last["message_reference"]["message_id"]) == int(prompt["id"])
    assert "Recorded it." in last["content"] and "Recorded it." not in first["content"]
    assert "`gated.record` done" in first["content"]
    assert len(calls_of(world, "record", note)) == 1
    assert tool_outputs(world.llm.requests_for(key)[1].body) == [f"recorded: {note}"]


async def test_deny_does_not_run_and_tells_the_model(world: World) -> None:
    chat = Chat(world.discord, "deny")
    key = f"k-deny-{world.backend}"
    note = f"denied-note-{world.backend}"
    world.llm.script(key, [ToolCall("gated__record", {"note": note})], Text("Okay, I won't."))
    asked = await chat.say(f"{key} record please")
    prompt = await chat.prompt()
    response = await click(world, prompt, "deny", chat.user)
    assert f"Denied by <@{chat.user}>" in response["data"]["content"]
    text = await chat.answer_text(int(asked["id"]), "Okay, I won't.")
    assert "🚫 `gated.record` not run" in text
    assert calls_of(world, "record", note) == []
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert "declined" in output


async def test_only_the_requester_may_decide(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "stranger")
    key = "k-stranger"
    world.llm.script(key, [ToolCall("gated__record", {"note": "stranger-note"})], Text("Done."))
    asked = await chat.say(f"{key} record please")
    prompt = await chat.prompt()
    intruder = world.discord.add_user("intruder")
    refusal = await click(world, prompt, "approve", intruder)
    assert refusal["type"] == 4 and refusal["data"]["flags"] & 64
    assert "can't decide" in refusal["data"]["content"]
    assert calls_of(world, "record", "stranger-note") == []
    unchanged = world.discord.message(int(prompt["id"]))
    assert not any(b.get("disabled") for b in buttons(unchanged))
    await click(world, prompt, "approve", chat.user)
    await chat.answer_text(int(asked["id"]), "Done.")
    assert len(calls_of(world, "record", "stranger-note")) == 1


async def test_timeout_counts_as_denied_and_disables_buttons(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    # A bot of its own with a short timeout: the shared worlds' long one never races a click.
    discord = FakeDiscord()
    await discord.start()
    call_log = tmp_path / "calls.jsonl"
    config = bot_config(llm, tmp_path, call_log, "chat")
    config["mcp"]["approval_timeout_s"] = 2
    audit_channel = discord.add_channel("audit-timeout")
    config["discord"]["audit_channel_id"] = audit_channel
    bot = BotProcess(discord, config, tmp_path)
    try:
        async with running(bot):
            world = World(discord=discord, llm=llm, bot=bot, call_log=call_log, backend="chat")
            chat = Chat(world.discord, "timeout")
            key = "k-timeout"
            world.llm.script(
                key, [ToolCall("gated__record", {"note": "late-note"})], Text("Nobody answered.")
            )
            asked = await chat.say(f"{key} record please")
            prompt = await chat.prompt()
            await chat.answer_text(int(asked["id"]), "Nobody answered.", timeout=30)
            final = world.discord.message(int(prompt["id"]))
            assert "Nobody decided in time" in final["content"]
            assert all(b["disabled"] for b in buttons(final))
            assert calls_of(world, "record", "late-note") == []
            (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
            assert "not run" in output

            def audited() -> list[str]:
                return [
                    line
                    for m in discord.messages(audit_channel)
                    for line in m["content"].splitlines()
                    if "`gated.record`" in line
                ]

            (line,) = await discord.wait_for(audited, timeout=10)
            assert f"asked by <@{chat.user}>: **timeout** ·" in line  # nobody decided
            assert "`note`" in line and "late-note" not in line
    finally:
        await discord.stop()


async def test_always_allow_skips_asking_in_this_conversation_only(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "always")
    key = "k-always"
    call = [ToolCall("gated__add", {"a": 20, "b": 22})]
    world.llm.script(key, call, Text("First: 42."), call, Text("Second: 42."))
    first = await chat.say(f"{key} add")
    prompt = await chat.prompt()
    response = await click(world, prompt, "always", chat.user)
    assert "Always allowed" in response["data"]["content"]
    await chat.answer_text(int(first["id"]), "First: 42.")
    second = await chat.say(f"{key} add again")
    await chat.answer_text(int(second["id"]), "Second: 42.")
    prompts = [m for m in chat.bot_messages() if "Approval needed" in m["content"]]
    assert len(prompts) == 1, "the second call asked again"
    assert tool_outputs(world.llm.requests_for(key)[3].body)[-1] == "42"
    # Another conversation (another user) is still asked.
    other_key = "k-always-other"
    world.llm.script(other_key, call, Text("Other: denied."))
    other = world.discord.add_user("other")
    asked = await chat.say(f"{other_key} add", user=other)
    other_prompt = await chat.prompt(newer_than=prompt)
    await click(world, other_prompt, "deny", other)
    await chat.answer_text(int(asked["id"]), "Other: denied.")


async def test_always_allow_lasts_until_reset(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "always-reset")
    key = "k-always-reset"
    call = [ToolCall("gated__add", {"a": 1, "b": 1})]
    world.llm.script(
        key, call, Text("Kept: 2."), call, Text("Unasked: 2."), call, Text("Asked again.")
    )
    first = await chat.say(f"{key} add")
    prompt = await chat.prompt()
    await click(world, prompt, "always", chat.user)
    await chat.answer_text(int(first["id"]), "Kept: 2.")
    second = await chat.say(f"{key} add again")
    await chat.answer_text(int(second["id"]), "Unasked: 2.")
    reset = await world.discord.slash_command("reset", chat.user, chat.channel)
    assert "forgotten" in (await reset.wait_response())["data"]["content"]
    third = await chat.say(f"{key} add after the reset")
    again = await chat.prompt(newer_than=prompt)
    assert "`add` from `gated`" in again["content"]
    await click(world, again, "deny", chat.user)
    await chat.answer_text(int(third["id"]), "Asked again.")


async def test_parallel_tool_calls_both_run(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "parallel")
    key = "k-parallel"
    world.llm.script(
        key,
        [ToolCall("auto__add", {"a": 1, "b": 2}), ToolCall("auto__echo", {"text": "par-echo"})],
        Text("Both done."),
    )
    asked = await chat.say(f"{key} do two things")
    text = await chat.answer_text(int(asked["id"]), "Both done.")
    assert "`auto.add` done" in text and "`auto.echo` done" in text
    assert tool_outputs(world.llm.requests_for(key)[1].body) == ["3", "par-echo"]


async def test_bad_arguments_and_failing_tools_reach_the_model(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "badargs")
    key = "k-badargs"
    world.llm.script(
        key,
        [ToolCall("auto__add", '{"a": 1, "b": '), ToolCall("auto__fail", {"message": "boom-7"})],
        Text("Handled."),
    )
    asked = await chat.say(f"{key} try")
    text = await chat.answer_text(int(asked["id"]), "Handled.")
    assert "⚠️ `auto.add` failed" in text and "⚠️ `auto.fail` failed" in text
    bad_json, failure = tool_outputs(world.llm.requests_for(key)[1].body)
    assert "not valid JSON" in bad_json and "boom-7" in failure


async def test_killed_server_fails_cleanly_and_comes_back(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "crash")
    key = "k-crash"
    world.llm.script(
        key,
        [ToolCall("auto__crash", {})],
        Text("It crashed."),
        [ToolCall("auto__add", {"a": 40, "b": 2})],
        Text("Back: 42."),
    )
    first = await chat.say(f"{key} crash it")
    text = await chat.answer_text(int(first["id"]), "It crashed.")
    assert "⚠️ `auto.crash` failed" in text
    # The cut call reaches the model as an error result that names the server and the failure.
    (cut,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert cut.startswith("MCP server 'auto' stopped during the call (connection closed)"), cut
    assert "may or may not have run" in cut
    second = await chat.say(f"{key} add")
    text = await chat.answer_text(int(second["id"]), "Back: 42.")
    assert "✅ `auto.add` done" in text
    assert tool_outputs(world.llm.requests_for(key)[3].body)[-1] == "42"


async def test_a_timed_out_call_tells_the_model_the_tool_may_have_run(chat_world: World) -> None:
    """A side-effecting tool that ran past the timeout may well have done its work: the model
    must not take "timed out" for "did nothing" and call it again."""
    world = chat_world
    chat = Chat(world.discord, "tool-timeout")
    key = "k-tool-timeout"
    # The shared world's mcp.tool_timeout_s is 10.
    world.llm.script(key, [ToolCall("auto__slow", {"seconds": 30})], Text("It timed out."))
    asked = await chat.say(f"{key} take your time")
    await chat.answer_text(int(asked["id"]), "It timed out.", timeout=45)
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert "timed out after 10 s" in output
    assert "the tool may or may not have run" in output
