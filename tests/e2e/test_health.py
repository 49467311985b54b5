"""`python -m bot health` (the image's HEALTHCHECK) reads the running bot's heartbeat."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import yaml

from tests.conftest import World
from tests.e2e.harness import BotProcess


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
