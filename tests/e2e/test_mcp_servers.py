"""End to end: the bot follows its MCP servers' lives (a dead idle server, a changed tool list)."""

from __future__ import annotations

import os
import signal
from typing import Any

from tests.conftest import World
from tests.e2e.harness import Chat
from tests.e2e.test_tools import calls_of, tool_outputs
from tests.fakes.llm import Text, ToolCall


def offered(body: dict[str, Any]) -> set[str]:
    """Names of the function tools an LLM request offered, for either API."""
    names = set()
    for tool in body.get("tools") or []:
        if tool.get("type") == "function":
            names.add(tool.get("name") or tool["function"]["name"])
    return names


async def test_idle_stdio_server_killed_between_turns(world: World) -> None:
    chat = Chat(world.discord, "mcp-kill")
    key = f"k-mcpkill-{world.backend}"
    before, after = f"before-kill-{world.backend}", f"after-kill-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("auto__record", {"note": before})],
        Text("First recorded."),
        [ToolCall("auto__record", {"note": after})],
        Text("Second recorded."),
    )
    first = await chat.say(f"{key} record one")
    await chat.answer_text(int(first["id"]), "First recorded.")
    (ran,) = calls_of(world, "record", before)
    lost = "'auto' disconnected (the process exited)"
    seen = world.bot.log(this_run=True).count(lost)
    os.kill(ran["pid"], signal.SIGKILL)  # the server dies while nobody uses it
    await world.discord.wait_for(
        lambda: world.bot.log(this_run=True).count(lost) > seen or None, timeout=15
    )

    second = await chat.say(f"{key} record two")
    text = await chat.answer_text(int(second["id"]), "Second recorded.")
    assert "✅ `auto.record` done" in text
    assert tool_outputs(world.llm.requests_for(key)[3].body)[-1] == f"recorded: {after}"
    (again,) = calls_of(world, "record", after)  # ran exactly once, on a fresh process
    assert again["pid"] != ran["pid"]


async def test_tools_list_changed_reaches_the_next_request(world: World) -> None:
    chat = Chat(world.discord, "mcp-grow")
    key = f"k-mcpgrow-{world.backend}"
    grown = f"newt_{world.backend}"
    world.llm.script(
        key,
        [ToolCall("auto__grow", {"name": grown, "answer": "ribbit"})],
        Text("Grown."),
        Text("I see it."),
    )
    asked = await chat.say(f"{key} grow a tool")
    text = await chat.answer_text(int(asked["id"]), "Grown.")
    assert "✅ `auto.grow` done" in text
    assert f"auto__{grown}" not in offered(world.llm.requests_for(key)[0].body)

    again = await chat.say(f"{key} what tools now?")
    await chat.answer_text(int(again["id"]), "I see it.")
    assert f"auto__{grown}" in offered(world.llm.requests_for(key)[2].body)
