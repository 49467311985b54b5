"""A prompt left pending by a restart: a click from a client that missed the restart's edit."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat, buttons, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import read_calls

EPHEMERAL = 64


async def test_a_click_on_a_prompt_expired_by_a_restart_says_expired_ask_again(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    audit_channel = discord.add_channel("audit-expired")
    call_log = tmp_path / "calls.jsonl"
    config = bot_config(llm, tmp_path, call_log, "chat", shutdown_grace_s=1)
    config["discord"]["audit_channel_id"] = audit_channel
    try:
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            chat = Chat(discord, "expired-click")
            key = "k-expired-click"
            llm.script(key, [ToolCall("gated__record", {"note": "never-run"})], Text("Gone."))
            await chat.say(f"{key} record")
            shown = await chat.prompt()  # what a client that misses the next edit keeps showing
            assert await bot.stop() == 0
        # Its time is up by the next start (a pending approval within its time resumes:
        # tests/e2e/test_approval_resume.py).
        late_config = {**config, "mcp": {**config["mcp"], "approval_timeout_s": 1}}
        async with running(BotProcess(discord, late_config, tmp_path)) as restarted:

            def expired() -> dict | None:
                now = discord.message(int(shown["id"])) or {}
                return now if "Expired" in now.get("content", "") else None

            marked = await discord.wait_for(expired)
            assert all(b["disabled"] for b in buttons(marked))
            approve = next(b for b in buttons(shown) if b["custom_id"].endswith(":approve"))
            late = await discord.click_button(
                int(shown["id"]), approve["custom_id"], chat.user, seen=shown
            )
            await late.wait_response()

            def said() -> list[dict]:
                return [f for f in late.followups if f["flags"] & EPHEMERAL]

            (private,) = await discord.wait_for(said)
            text = private["content"].lower()
            assert "expired" in text and "again" in text
            after = discord.message(int(shown["id"]))
            assert all(b["disabled"] for b in buttons(after))
            assert after["content"].count("Expired") == 1
            assert [c for c in read_calls(call_log) if c["tool"] == "record"] == []
            assert await restarted.stop() == 0  # posts every queued audit line first
        audited = [
            line
            for m in discord.messages(audit_channel)
            for line in m["content"].splitlines()
            if "`gated.record`" in line
        ]
        assert len(audited) == 1 and "**expired**" in audited[0], audited
    finally:
        await discord.stop()
