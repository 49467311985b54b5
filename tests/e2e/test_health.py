"""`python -m bot health` (the image's HEALTHCHECK) reads the running bot's heartbeat."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import yaml

from bot.ops.health import HEARTBEAT_EVERY_S
from tests.conftest import World, bot_config, bot_running
from tests.e2e.harness import BotProcess
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM


def beat_time(path: Path) -> float:
    """When the bot last beat, as the heartbeat file says."""
    return float(json.loads(path.read_text(encoding="utf-8"))["time"])


def health(bot: BotProcess) -> subprocess.CompletedProcess[str]:
    return bot.cli("health")


async def test_health_is_ok_while_connected(chat_world: World) -> None:
    beat = Path(chat_world.bot.config["storage"]["path"] + ".heartbeat")
    await chat_world.discord.wait_for(beat.exists, timeout=15)
    result = await asyncio.to_thread(health, chat_world.bot)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("healthy: heartbeat")
    assert "1 guild(s)" in result.stdout


async def test_health_fails_without_a_heartbeat(chat_world: World, tmp_path: Path) -> None:
    other = BotProcess(chat_world.discord, {**chat_world.bot.config}, tmp_path)
    other.config["storage"] = {"path": str(tmp_path / "never-ran.db")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(other.config), encoding="utf-8")
    result = await asyncio.to_thread(health, other)
    assert result.returncode == 1
    assert "no heartbeat" in result.stdout


async def test_the_heartbeat_stops_while_the_gateway_is_lost(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    # Its own bot: the gateway stays down longer than a shared world's next test would wait.
    async with FakeDiscord() as discord:
        config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat")
        async with bot_running(discord, config, tmp_path) as bot:
            path = Path(bot.config["storage"]["path"] + ".heartbeat")
            await discord.wait_for(path.exists, timeout=15)
            discord.gateway.down = True
            await discord.gateway.disconnect()
            await discord.wait_for(lambda: not discord.gateway.connected())
            await asyncio.sleep(1)  # discord.py has seen the close
            last = beat_time(path)
            await asyncio.sleep(HEARTBEAT_EVERY_S + 1.5)  # a beat was due meanwhile
            assert beat_time(path) == last
            discord.gateway.down = False  # back: beats resume, so health recovers
            await discord.wait_for(lambda: beat_time(path) != last, timeout=60)
