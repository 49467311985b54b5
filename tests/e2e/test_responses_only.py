"""End to end on the responses backend: server-side MCP, stale response ids, local state."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import World, bot_config
from tests.e2e.harness import BotProcess, Chat, buttons
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import Cut, McpApprovalRequest, McpCall, ScriptedLLM, Text


def approval_responses(body: dict) -> list[dict]:
    items = body.get("input") or []
    return [i for i in items if isinstance(i, dict) and i.get("type") == "mcp_approval_response"]


async def test_server_side_mcp_tools_are_passed_and_their_calls_shown(
    responses_world: World,
) -> None:
    world = responses_world
    chat = Chat(world.discord, "mcpcall")
    key = "k-mcpcall"
    world.llm.script(key, [McpCall("docs-search", {"q": "x"}, output="found it"), Text("Found.")])
    asked = await chat.say(f"{key} search the docs")
    text = await chat.answer_text(int(asked["id"]), "Found.")
    assert "✅ `litellm.docs-search` done" in text
    (mcp_tool,) = [t for t in world.llm.requests_for(key)[0].body["tools"] if t["type"] == "mcp"]
    assert mcp_tool["server_label"] == "docs" and mcp_tool["require_approval"] == "always"


async def test_server_side_approval_request_gets_buttons(responses_world: World) -> None:
    world = responses_world
    for action, approve in (("approve", True), ("deny", False)):
        chat = Chat(world.discord, f"mcpapproval-{action}")
        key = f"k-mcpapproval-{action}"
        world.llm.script(
            key,
            [McpApprovalRequest("search", {"q": "docs"}, server_label="docs")],
            Text(f"After {action}."),
        )
        asked = await chat.say(f"{key} search")
        prompt = await chat.prompt()
        assert "`search` from `docs`" in prompt["content"]
        custom_id = next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith(action))
        interaction = await world.discord.click_button(int(prompt["id"]), custom_id, chat.user)
        await interaction.wait_response()
        await chat.answer_text(int(asked["id"]), f"After {action}.")
        follow_up = world.llm.requests_for(key)[1].body
        (answer,) = approval_responses(follow_up)
        assert answer["approve"] is approve
        assert follow_up["previous_response_id"]


def may_have_run(text: str) -> bool:
    return "may have run" in text


async def test_a_server_side_tool_cut_off_while_running_is_not_sent_again(
    responses_world: World,
) -> None:
    world = responses_world
    chat = Chat(world.discord, "mcp-cut")
    key = "k-mcp-cut"
    started = McpCall("send_email", {"to": "ann"}, output="sent", server_label="docs")
    # A retry would be answered: only the bot's own rule keeps it from asking again.
    world.llm.script(key, Cut(during=started), Text("Sent twice."))
    asked = await chat.say(f"{key} send the mail")
    parts = await chat.answer(int(asked["id"]), lambda t: may_have_run(t) or "twice" in t)
    text = "\n".join(p["content"] for p in parts)
    assert len(world.llm.requests_for(key)) == 1
    last = text.splitlines()[-1]
    assert "`docs.send_email`" in last and may_have_run(last), text
    assert "twice" not in text


async def test_an_approved_server_side_tool_cut_off_while_running_is_not_sent_again(
    responses_world: World,
) -> None:
    world = responses_world
    chat = Chat(world.discord, "mcp-cut-approved")
    key = "k-mcp-cut-approved"
    ask = McpApprovalRequest("send_email", {"to": "ann"}, server_label="docs")
    started = McpCall("send_email", {"to": "ann"}, output="sent", server_label="docs")
    world.llm.script(key, [ask], Cut(during=started), Text("Sent twice."))
    asked = await chat.say(f"{key} send the mail")
    prompt = await chat.prompt()
    approve = next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith("approve"))
    interaction = await world.discord.click_button(int(prompt["id"]), approve, chat.user)
    await interaction.wait_response()
    parts = await chat.answer(int(asked["id"]), lambda t: may_have_run(t) or "twice" in t)
    text = "\n".join(p["content"] for p in parts)
    first, *rest = world.llm.requests_for(key)
    # One request asked, one carried the human's "approve" and broke: nothing after it.
    assert len(rest) == 1, [r.body.get("input") for r in rest]
    (answer,) = approval_responses(rest[0].body)
    assert answer["approve"] is True
    assert may_have_run(text.splitlines()[-1]) and "twice" not in text, text


async def test_unknown_stored_response_id_starts_fresh_with_a_note(
    responses_world: World,
) -> None:
    world = responses_world
    chat = Chat(world.discord, "stale")
    key = "k-stale"
    world.llm.script(key, Text("First answer."), Text("Fresh answer."))
    first = await chat.say(f"{key} hello")
    await chat.answer_text(int(first["id"]), "First answer.")
    world.llm.forget_responses(key)
    second = await chat.say(f"{key} hello again")
    text = await chat.answer_text(int(second["id"]), "Fresh answer.")
    assert "fresh start" in text
    requests = world.llm.requests_for(key)
    assert requests[1].body.get("previous_response_id")  # rejected by the server
    assert not requests[-1].body.get("previous_response_id")
    third = await chat.say(f"{key} and now?")
    await chat.answer_text(int(third["id"]), "echo")
    assert world.llm.requests_for(key)[-1].body.get("previous_response_id")


async def test_local_state_sends_the_history_itself(llm: ScriptedLLM, tmp_path: Path) -> None:
    discord = FakeDiscord()
    await discord.start()
    config = bot_config(
        llm,
        tmp_path,
        tmp_path / "calls.jsonl",
        "responses",
        mcp={"servers": {}},
    )
    config["llm"]["state"] = "local"
    bot = BotProcess(discord, config, tmp_path)
    try:
        await bot.start()
        chat = Chat(discord, "local")
        key = "k-local"
        llm.script(key, Text("Noted: Lovelace."), Text("You are Lovelace."))
        first = await chat.say(f"{key} I am Lovelace")
        await chat.answer_text(int(first["id"]), "Noted")
        second = await chat.say(f"{key} who am I?")
        await chat.answer_text(int(second["id"]), "You are Lovelace.")
        body = llm.requests_for(key)[1].body
        assert not body.get("previous_response_id")
        roles = [(i.get("role"), str(i.get("content"))) for i in body["input"]]
        assert ("user", f"{key} I am Lovelace") in roles
        assert any(r == "assistant" and "Noted: Lovelace." in c for r, c in roles)
        assert await bot.stop() == 0
    finally:
        await bot.kill()
        await discord.stop()
