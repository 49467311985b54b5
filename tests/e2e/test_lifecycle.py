"""Fresh bot processes: start-up, slash-command sync, SIGTERM, restart with state and approvals."""

from __future__ import annotations

import pytest

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat, buttons, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import read_calls


@pytest.fixture
async def discord() -> FakeDiscord:
    fake = FakeDiscord()
    await fake.start()
    yield fake
    await fake.stop()


async def test_bot_logs_in_syncs_commands_and_stops_on_sigterm(
    discord: FakeDiscord, llm: ScriptedLLM, tmp_path
) -> None:
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", mcp={"servers": {}})
    async with running(BotProcess(discord, config, tmp_path)) as bot:
        names = {c["name"] for c in discord.commands.get("global", [])}
        assert {"reset", "tools", "model"} <= names
        assert discord.counters["identify"] == 1
        # SIGTERM in the middle of an answer: it still finishes within the grace period.
        chat = Chat(discord, "sigterm")
        text = " ".join(f"part{i}" for i in range(60))
        llm.script("k-sigterm", Text(text, chunk_size=10, delay_s=0.05))
        asked = await chat.say("k-sigterm talk for a while")
        await discord.wait_for(lambda: chat.replies_to(int(asked["id"])))
        assert await bot.stop(timeout=20) == 0
        assert [p["content"] for p in chat.replies_to(int(asked["id"]))] == [text]
        log = bot.log()
        assert "stopped cleanly" in log
        assert "Traceback" not in log


async def test_restart_keeps_history_and_expires_pending_approvals(
    discord: FakeDiscord, llm: ScriptedLLM, tmp_path
) -> None:
    call_log = tmp_path / "calls.jsonl"
    config = bot_config(llm, tmp_path, call_log, "chat", shutdown_grace_s=1)
    chat = Chat(discord, "restart")
    key = "k-restart"
    llm.script(
        key,
        Text("Hello Grace."),
        [ToolCall("gated__record", {"note": "restart-note"})],
        Text("Your name is Grace."),
    )
    async with running(BotProcess(discord, config, tmp_path)):
        first = await chat.say(f"{key} my name is Grace")
        await chat.answer_text(int(first["id"]), "Hello Grace.")
        await chat.say(f"{key} record something")
        prompt = await chat.prompt()

    # Its time is up by the next start (one within its time resumes instead).
    late_config = {**config, "mcp": {**config["mcp"], "approval_timeout_s": 1}}
    async with running(BotProcess(discord, late_config, tmp_path)):
        expired = await discord.wait_for(
            lambda: (m := discord.message(int(prompt["id"]))) and "Expired" in m["content"] and m
        )
        # Prompts past their time are disabled at start-up, so no click reaches a turn that is gone;
        # a click that still arrives is answered "expired" (tests/test_approvals.py).
        assert all(b["disabled"] for b in buttons(expired))
        assert "Expired" in expired["content"]
        assert [c for c in read_calls(call_log) if c["tool"] == "record"] == []

        third = await chat.say(f"{key} what is my name?")
        await chat.answer_text(int(third["id"]), "Your name is Grace.")
        body = llm.requests_for(key)[-1].body
        assert any("my name is Grace" in str(m.get("content")) for m in body["messages"])
