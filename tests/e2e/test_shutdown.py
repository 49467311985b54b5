"""SIGTERM and SIGINT alike: running answers finish, no new question is taken, the bot exits 0."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import bot_config
from tests.e2e import rules
from tests.e2e.harness import BotProcess, Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_signal_finishes_running_answers_and_takes_no_new_question(
    sig: signal.Signals, llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", mcp={"servers": {}})
    config["shutdown_grace_s"] = 30  # ample: this answer must end by itself, not be cut off
    bot = BotProcess(discord, config, tmp_path)
    try:
        await bot.start()
        before = rules.snapshot(discord)
        chat = Chat(discord, "shutdown")
        key, late = f"k-stopping-{sig.name}", f"k-too-late-{sig.name}"
        text = " ".join(f"word{i}" for i in range(40))
        llm.script(key, Text(text, chunk_size=10, delay_s=0.1))  # about 3 s of streaming
        asked = await chat.say(f"{key} talk for a while")
        await discord.wait_for(lambda: chat.replies_to(int(asked["id"])), timeout=20)
        assert bot.proc is not None
        bot.proc.send_signal(sig)
        await bot.wait_logged("shutting down")
        # Asked while the first answer is still streaming and the gateway still delivers.
        refused = await chat.say(f"{late} are you still there?")
        code = await bot.wait_exit(60)
    finally:
        await bot.kill()
        await discord.stop()
    assert code == 0, bot.log()[-3000:]
    assert [p["content"] for p in chat.replies_to(int(asked["id"]))] == [text]
    assert chat.replies_to(int(refused["id"])) == []
    assert llm.requests_mentioning(late) == []
    log = bot.log()
    assert "stopped cleanly" in log and "Traceback" not in log
    found = rules.violations(discord, before, set(), edit_interval_s=1.0)
    assert not found, "Discord rules broken:\n" + "\n".join(found)
