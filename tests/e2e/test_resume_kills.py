"""kill -9 at each point of an approved call a test can see from outside: no tool runs twice,
and the turn resumes after the restart and reaches its final text."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import BotProcess, Chat, buttons, running
from tests.e2e.test_approval_resume import SETUPS, _button, _config
from tests.e2e.test_tools import tool_outputs
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import McpApprovalRequest, McpCall, ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import read_calls

LOST = "its result was lost"


def _holds(call_log: Path) -> list[dict]:
    return [c for c in read_calls(call_log) if c["tool"] == "hold_until"]


async def _ask_and_approve(
    discord: FakeDiscord, bot: BotProcess, chat: Chat, key: str
) -> tuple[dict, dict]:
    """Asks, approves: the question and the prompt (the click's answer has come back)."""
    await bot.start()
    asked = await chat.say(f"{key} hold on")
    prompt = await chat.prompt()
    clicked = await discord.click_button(int(prompt["id"]), _button(prompt, "approve"), chat.user)
    await clicked.wait_response()
    return asked, prompt


async def _wait(condition: Any, timeout: float = 30) -> None:
    for _ in range(int(timeout * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition never met")


@pytest.mark.parametrize("setup", SETUPS)
async def test_a_kill_right_after_the_click_runs_the_tool_once_and_the_turn_resumes(
    setup: str, llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, setup, approval_timeout_s=60)
    call_log = tmp_path / "calls.jsonl"
    release = tmp_path / "release"
    chat = Chat(discord, f"kill-click-{setup}")
    key = f"k-kill-click-{setup}"
    llm.script(
        key, [ToolCall("gated__hold_until", {"path": str(release)})], Text("Done after all.")
    )
    first = BotProcess(discord, config, tmp_path)
    try:
        try:
            asked, _ = await _ask_and_approve(discord, first, chat, key)
        finally:
            await first.kill()
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            await bot.wait_logged("resumed")
            release.touch()
            text = await chat.answer_text(int(asked["id"]), "Done after all.")
            # Cut before it started, it runs now; cut while it ran, it is not run again.
            assert len(_holds(call_log)) == 1
            outputs = tool_outputs(llm.requests_for(key)[-1].body)
            if any("was lost" in o for o in outputs):
                assert LOST in text
            else:
                assert any(f"released: {release}" in o for o in outputs), outputs
        assert len(_holds(call_log)) == 1
    finally:
        await discord.stop()


@pytest.mark.parametrize("setup", SETUPS)
async def test_a_kill_while_the_tool_runs_never_runs_it_again_and_says_its_result_was_lost(
    setup: str, llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, setup, approval_timeout_s=60)
    call_log = tmp_path / "calls.jsonl"
    release = tmp_path / "release"
    chat = Chat(discord, f"kill-running-{setup}")
    key = f"k-kill-running-{setup}"
    llm.script(key, [ToolCall("gated__hold_until", {"path": str(release)})], Text("Told."))
    first = BotProcess(discord, config, tmp_path)
    try:
        try:
            asked, _ = await _ask_and_approve(discord, first, chat, key)
            await _wait(lambda: _holds(call_log))  # the tool server is inside the call
        finally:
            await first.kill()
        release.touch()  # whatever is left of the old call may end now
        async with running(BotProcess(discord, config, tmp_path)):
            text = await chat.answer_text(int(asked["id"]), "Told.")
            assert LOST in text
            (last,) = llm.requests_for(key)[1:]
            assert any("was lost" in o for o in tool_outputs(last.body))
        assert len(_holds(call_log)) == 1
    finally:
        await discord.stop()


@pytest.mark.parametrize("setup", SETUPS)
async def test_a_kill_after_the_tool_answered_resumes_with_its_result_and_never_runs_it_again(
    setup: str, llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, setup, approval_timeout_s=60)
    call_log = tmp_path / "calls.jsonl"
    release = tmp_path / "release"
    release.touch()  # the call answers at once
    chat = Chat(discord, f"kill-after-{setup}")
    key = f"k-kill-after-{setup}"
    slow = " ".join(f"slow{i}" for i in range(80))
    llm.script(
        key,
        [ToolCall("gated__hold_until", {"path": str(release)})],
        Text(slow, chunk_size=5, delay_s=0.3),  # the kill lands while this streams
        Text("Answered again."),
    )
    first = BotProcess(discord, config, tmp_path)
    try:
        try:
            asked, _ = await _ask_and_approve(discord, first, chat, key)
            await _wait(lambda: len(llm.requests_for(key)) == 2)  # the tool answered
        finally:
            await first.kill()
        async with running(BotProcess(discord, config, tmp_path)):
            await chat.answer_text(int(asked["id"]), "Answered again.")
            requests = llm.requests_for(key)
            assert len(requests) == 3
            # Sent again with the real result (state server: the server holds it already).
            assert tool_outputs(requests[2].body) == tool_outputs(requests[1].body)
        assert len(_holds(call_log)) == 1
    finally:
        await discord.stop()


async def test_an_unreadable_stored_position_expires_its_approval_and_later_turns_work(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """A position that cannot be read (damaged, or from a bot that wrote another shape) is
    logged and its approval expires, once: it never fails a start or a later turn."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, "chat", approval_timeout_s=60)
    chat = Chat(discord, "kill-corrupt")
    key = "k-kill-corrupt"
    llm.script(key, [ToolCall("gated__record", {"note": "corrupt"})], Text("Fine."))
    first = BotProcess(discord, config, tmp_path)
    try:
        try:
            await first.start()
            await chat.say(f"{key} record")
            prompt = await chat.prompt()
        finally:
            await first.kill()
        with sqlite3.connect(tmp_path / "bot.db") as db:
            db.execute('UPDATE approvals SET resume_state = \'{"v": 1, "backend"\'')
        for _ in range(2):
            async with running(BotProcess(discord, config, tmp_path)) as bot:

                def expired() -> dict | None:
                    now = discord.message(int(prompt["id"])) or {}
                    return now if "Expired" in now.get("content", "") else None

                marked = await discord.wait_for(expired)
                assert all(b["disabled"] for b in buttons(marked))
            assert bot.log().count("not JSON") == 1  # the next start finds nothing to say
        asked = await _later_question(discord, config, tmp_path, chat, key)
        assert "Fine." in asked
        assert [c for c in read_calls(tmp_path / "calls.jsonl") if c["tool"] == "record"] == []
    finally:
        await discord.stop()


async def _later_question(
    discord: FakeDiscord, config: dict[str, Any], tmp_path: Path, chat: Chat, key: str
) -> str:
    llm_key_question = f"{key} just answer"
    async with running(BotProcess(discord, config, tmp_path)):
        asked = await chat.say(llm_key_question)
        return await chat.answer_text(int(asked["id"]), "Fine.")


async def test_a_kill_after_a_server_side_approval_was_sent_never_sends_it_again(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """responses, state server: the request carrying the approval may have reached the server
    (which then runs the tool): after the restart the turn goes on, withdrawing that approval
    with a reason, never approving it a second time."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, "responses-server", approval_timeout_s=60)
    config["mcp"]["servers"]["docs"] = {
        "url": "http://127.0.0.1:9/docs-mcp",
        "server_side": True,
        "require_approval": "always",
    }
    chat = Chat(discord, "kill-server-sent")
    key = "k-kill-server-sent"
    slow = " ".join(f"slow{i}" for i in range(80))
    llm.script(
        key,
        [McpApprovalRequest("search", {"q": "once"}, server_label="docs")],
        [
            McpCall("search", {"q": "once"}, output="hit", server_label="docs"),
            Text(slow, chunk_size=5, delay_s=0.3),
        ],
        Text("Said so."),
    )
    first = BotProcess(discord, config, tmp_path)
    try:
        try:
            asked, _ = await _ask_and_approve(discord, first, chat, key)
            await _wait(lambda: len(llm.requests_for(key)) == 2)  # the approval went out
        finally:
            await first.kill()
        async with running(BotProcess(discord, config, tmp_path)):
            await chat.answer_text(int(asked["id"]), "Said so.")
        answers = [
            [i for i in r.body["input"] if i.get("type") == "mcp_approval_response"]
            for r in llm.requests_for(key)[1:]
        ]
        assert [[a["approve"] for a in sent] for sent in answers] == [[True], [False]]
        assert "may already have run" in answers[1][0]["reason"]
    finally:
        await discord.stop()


async def test_a_kill_before_the_prompts_id_was_stored_still_resumes_below_it(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """The injected fault: the kill lands after the prompt was posted but before its message id
    was written (the id is cleared in the file). The next start finds the prompt by its
    buttons; its Approve still runs the tool, once."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _config(llm, tmp_path, "chat", approval_timeout_s=60)
    chat = Chat(discord, "kill-unattached")
    key = "k-kill-unattached"
    llm.script(key, [ToolCall("gated__record", {"note": "unattached"})], Text("Found it."))
    first = BotProcess(discord, config, tmp_path)
    try:
        try:
            await first.start()
            asked = await chat.say(f"{key} record")
            prompt = await chat.prompt()
        finally:
            await first.kill()
        with sqlite3.connect(tmp_path / "bot.db") as db:
            db.execute("UPDATE approvals SET channel_id = NULL, message_id = NULL")
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            await bot.wait_logged("resumed")
            clicked = await discord.click_button(
                int(prompt["id"]), _button(prompt, "approve"), chat.user
            )
            await clicked.wait_response()
            await chat.answer_text(int(asked["id"]), "Found it.")
        records = [c for c in read_calls(tmp_path / "calls.jsonl") if c["tool"] == "record"]
        assert len(records) == 1
    finally:
        await discord.stop()


async def test_a_resumed_approval_times_out_counting_from_when_it_was_asked(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """Nobody decides after the restart: the prompt times out when approval_timeout_s has
    passed since it was asked (not since the start), the tool never runs, and the answer ends."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    timeout_s = 15
    config = _config(llm, tmp_path, "chat", approval_timeout_s=timeout_s)
    chat = Chat(discord, "kill-timeout")
    key = "k-kill-timeout"
    llm.script(key, [ToolCall("gated__record", {"note": "timeout"})], Text("Nobody said yes."))
    first = BotProcess(discord, config, tmp_path)
    try:
        try:
            await first.start()
            asked = await chat.say(f"{key} record")
            prompt = await chat.prompt()
            asked_at = time.monotonic()
        finally:
            await first.kill()
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            await bot.wait_logged("resumed")
            started_at = time.monotonic()

            def timed_out() -> dict | None:
                now = discord.message(int(prompt["id"])) or {}
                return now if "Nobody decided in time" in now.get("content", "") else None

            marked = await discord.wait_for(timed_out, timeout=timeout_s + 10)
            waited = time.monotonic() - asked_at
            assert started_at - asked_at > 2  # the restart took a while, and that counted
            assert timeout_s - 2 < waited < timeout_s + 4, waited
            assert all(b["disabled"] for b in buttons(marked))
            await chat.answer_text(int(asked["id"]), "Nobody said yes.")
        assert [c for c in read_calls(tmp_path / "calls.jsonl") if c["tool"] == "record"] == []
    finally:
        await discord.stop()
