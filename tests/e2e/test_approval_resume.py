"""Approvals survive a kill -9: the old prompt's buttons still decide, and the answer goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat, buttons, running
from tests.e2e.test_tools import tool_outputs
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import McpApprovalRequest, McpCall, ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import read_calls

EPHEMERAL = 64
# chat; responses keeping the history itself (local) or continuing the server's (server)
SETUPS = ["chat", "responses-local", "responses-server"]


def _config(llm: ScriptedLLM, tmp_path: Path, setup: str, **mcp: Any) -> dict[str, Any]:
    backend, _, state = setup.partition("-")
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", backend, shutdown_grace_s=1)
    config["llm"]["state"] = state or "server"
    config["mcp"] = {**config["mcp"], **mcp}
    return config


def _button(message: dict, action: str) -> str:
    return next(b["custom_id"] for b in buttons(message) if b["custom_id"].endswith(f":{action}"))


def _records(call_log: Path, note: str) -> list[dict]:
    return [
        c for c in read_calls(call_log) if c["tool"] == "record" and c["arguments"]["note"] == note
    ]


async def _click(discord: FakeDiscord, prompt: dict, action: str, user: int) -> dict:
    clicked = await discord.click_button(int(prompt["id"]), _button(prompt, action), user)
    return await clicked.wait_response()


async def _killed_while_pending(
    discord: FakeDiscord, config: dict[str, Any], tmp_path: Path, chat: Chat, key: str
) -> tuple[dict, dict]:
    """Asks the question, waits for the prompt, kill -9s the bot: the question and the prompt."""
    first = BotProcess(discord, config, tmp_path)
    await first.start()
    try:
        asked = await chat.say(f"{key} record it")
        prompt = await chat.prompt()
    finally:
        await first.kill()
    return asked, prompt


@pytest.mark.parametrize("setup", SETUPS)
async def test_an_approval_pending_at_a_kill_is_approved_after_the_restart_and_the_answer_ends(
    setup: str, llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, setup, approval_timeout_s=60)
    chat = Chat(discord, f"resume-approve-{setup}")
    key = f"k-resume-approve-{setup}"
    note = f"resumed-{setup}"
    llm.script(key, [ToolCall("gated__record", {"note": note})], Text("Recorded after all."))
    try:
        asked, prompt = await _killed_while_pending(discord, config, tmp_path, chat, key)
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            await bot.wait_logged("resumed")
            now = discord.message(int(prompt["id"]))
            assert not any(b["disabled"] for b in buttons(now) if "edit" not in b["custom_id"])
            answered = await _click(discord, prompt, "approve", chat.user)
            assert not answered["data"].get("flags", 0) & EPHEMERAL, answered
            text = await chat.answer_text(int(asked["id"]), "Recorded after all.")
            assert "✅" in text and "record" in text
            assert "continued after a restart" in text  # shown at once, before the click
            assert len(_records(tmp_path / "calls.jsonl", note)) == 1
            # The model saw the tool's real result, once.
            (last,) = [r for r in llm.requests_for(key)][-1:]
            assert tool_outputs(last.body).count(f"recorded: {note}") == 1
            assert "Approved" in (discord.message(int(prompt["id"])) or {})["content"]
        # A second restart resumes nothing more, and the tool still ran once.
        async with running(BotProcess(discord, config, tmp_path)):
            await asyncio.sleep(2)
        assert len(_records(tmp_path / "calls.jsonl", note)) == 1
        assert len(llm.requests_for(key)) == 2
    finally:
        await discord.stop()


@pytest.mark.parametrize("setup", SETUPS)
async def test_an_approval_pending_at_a_kill_is_denied_after_the_restart_and_never_runs(
    setup: str, llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, setup, approval_timeout_s=60)
    chat = Chat(discord, f"resume-deny-{setup}")
    key = f"k-resume-deny-{setup}"
    note = f"denied-{setup}"
    llm.script(key, [ToolCall("gated__record", {"note": note})], Text("Fine, not recorded."))
    try:
        asked, prompt = await _killed_while_pending(discord, config, tmp_path, chat, key)
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            await bot.wait_logged("resumed")
            await _click(discord, prompt, "deny", chat.user)
            text = await chat.answer_text(int(asked["id"]), "Fine, not recorded.")
            assert "not run" in text
            last = llm.requests_for(key)[-1]
            assert any("declined" in out for out in tool_outputs(last.body))
        assert _records(tmp_path / "calls.jsonl", note) == []
    finally:
        await discord.stop()


@pytest.mark.parametrize("setup", SETUPS)
async def test_an_approval_whose_timeout_passes_while_the_bot_is_down_expires_and_never_runs(
    setup: str, llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, setup, approval_timeout_s=4)
    chat = Chat(discord, f"resume-late-{setup}")
    key = f"k-resume-late-{setup}"
    note = f"late-{setup}"
    llm.script(key, [ToolCall("gated__record", {"note": note})], Text("Never."))
    try:
        _, prompt = await _killed_while_pending(discord, config, tmp_path, chat, key)
        await asyncio.sleep(5)  # the timeout passes while the bot is down
        async with running(BotProcess(discord, config, tmp_path)):

            def expired() -> dict | None:
                now = discord.message(int(prompt["id"])) or {}
                return now if "Expired" in now.get("content", "") else None

            marked = await discord.wait_for(expired)
            assert all(b["disabled"] for b in buttons(marked))
            late = await discord.click_button(
                int(prompt["id"]), _button(prompt, "approve"), chat.user, seen=prompt
            )
            await late.wait_response()
            await asyncio.sleep(1)
        assert _records(tmp_path / "calls.jsonl", note) == []
        assert len(llm.requests_for(key)) == 1
    finally:
        await discord.stop()


async def test_a_server_side_approval_pending_at_a_kill_continues_the_stored_response(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """responses, state server: the server's mcp_approval_request is answered after the restart,
    continuing the response that asked."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, "responses-server", approval_timeout_s=60)
    config["mcp"]["servers"]["docs"] = {
        "url": "http://127.0.0.1:9/docs-mcp",
        "server_side": True,
        "require_approval": "always",
    }
    chat = Chat(discord, "resume-server-side")
    key = "k-resume-server-side"
    llm.script(
        key,
        [McpApprovalRequest("search", {"q": "resume"}, server_label="docs")],
        [McpCall("search", {"q": "resume"}, output="hit", server_label="docs"), Text("Found.")],
    )
    try:
        first = BotProcess(discord, config, tmp_path)
        await first.start()
        try:
            asked = await chat.say(f"{key} search")
            prompt = await chat.prompt()
        finally:
            await first.kill()
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            await bot.wait_logged("resumed")
            await _click(discord, prompt, "approve", chat.user)
            await chat.answer_text(int(asked["id"]), "Found.")
            first_request, second = llm.requests_for(key)
            assert second.body["previous_response_id"]
            approvals = [
                i for i in second.body["input"] if i.get("type") == "mcp_approval_response"
            ]
            assert [a["approve"] for a in approvals] == [True]
    finally:
        await discord.stop()
