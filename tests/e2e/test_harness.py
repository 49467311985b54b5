"""The harness itself: a failed stop fails the test, a bot that never starts leaves no process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM


class Exits(BotProcess):
    """A bot that starts at once and leaves with `code` (or a stop error) when stopped."""

    def __init__(self, code: int = 0, error: Exception | None = None) -> None:
        self.code, self.error, self.stopped = code, error, False

    async def start(self, *, wait: bool = True, timeout: float = 90) -> None:
        pass

    async def stop(self, timeout: float = 40) -> int:
        self.stopped = True
        if self.error is not None:
            raise self.error
        return self.code

    def log(self, *, this_run: bool = False) -> str:
        return "the bot's last words"


async def test_a_bot_that_exits_non_zero_fails_the_block() -> None:
    with pytest.raises(AssertionError, match="exited with 1"):
        async with running(Exits(1)):
            pass


async def test_a_stop_error_fails_the_block() -> None:
    with pytest.raises(TimeoutError):
        async with running(Exits(error=TimeoutError("still running after 40 s"))):
            pass


async def test_a_failing_test_keeps_its_own_error_and_still_stops_the_bot() -> None:
    bot = Exits(error=TimeoutError("still running"))
    with pytest.raises(ValueError, match="the test's own") as failed:
        async with running(bot):
            raise ValueError("the test's own failure")
    assert bot.stopped
    assert any("still running" in note for note in failed.value.__notes__)


async def test_a_bot_that_never_logs_in_is_killed(llm: ScriptedLLM, tmp_path: Path) -> None:
    discord = FakeDiscord()
    await discord.start()
    try:
        config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", mcp={"servers": {}})
        bot = BotProcess(discord, config, tmp_path)
        with pytest.raises(TimeoutError):
            await bot.start(timeout=0.05)  # far too short to import the bot, let alone log in
        assert bot.proc is not None and bot.proc.poll() is not None, "left running"
    finally:
        await discord.stop()
