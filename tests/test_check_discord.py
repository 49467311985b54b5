"""`check --discord` without configured channels, and with the shard variables of one process."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import yaml

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.state import SEND_MESSAGES, TEXT
from tests.fakes.llm import ScriptedLLM
from tests.test_cli import run_bot


async def check_discord(
    discord: FakeDiscord, llm: ScriptedLLM, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    config = {  # no discord.channels, no channel allow list
        "llm": {"model": "openai/test-model", "base_url": llm.base_url},
        "storage": {"path": str(tmp_path / "bot.db")},
        "mcp": {"servers": {}},
    }
    await discord.start()
    try:
        return await asyncio.to_thread(
            run_bot,
            tmp_path,
            "check",
            "--discord",
            config=yaml.safe_dump(config),
            DISCORD_TOKEN=discord.token,
            OPENAI_API_KEY="sk-test",
            **discord.bot_env(),
            **env,
        )
    finally:
        await discord.stop()


def rows_of(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {line.split()[1]: line for line in result.stdout.splitlines() if line.strip()}


def text_channels(discord: FakeDiscord, guilds: set[int]) -> set[str]:
    return {
        f"channel:{c.id}"
        for c in discord.world.channels.values()
        if c.type == TEXT and c.guild_id in guilds
    }


async def test_check_discord_without_configured_channels_checks_every_text_channel(
    tmp_path: Path, llm: ScriptedLLM
) -> None:
    discord = FakeDiscord()
    general = discord.add_channel("general")
    muted = discord.add_channel("muted")
    discord.set_overwrite(muted, discord.guild_id, deny=SEND_MESSAGES)
    other_guild = discord.add_guild("Other Guild")
    elsewhere = discord.add_channel("elsewhere", guild_id=other_guild)
    dm_user = discord.add_user("dm-user")
    discord.add_dm_channel(dm_user)  # not a guild's text channel: no row

    result = await check_discord(discord, llm, tmp_path)
    rows = rows_of(result)
    assert rows["discord"].startswith("OK"), result.stdout + result.stderr
    assert rows["channels"].startswith("OK") and "every text channel" in rows["channels"]
    checked = {name for name in rows if name.startswith("channel:")}
    assert checked == text_channels(discord, {discord.guild_id, other_guild})
    assert {f"channel:{general}", f"channel:{muted}", f"channel:{elsewhere}"} <= checked
    assert "read yes, send yes" in rows[f"channel:{general}"]
    assert rows[f"channel:{muted}"].startswith("FAIL") and "send NO" in rows[f"channel:{muted}"]
    assert "in Other Guild" in rows[f"channel:{elsewhere}"]
    assert result.returncode == 1  # the muted channel fails its row


async def test_check_discord_with_shard_variables_lists_that_processes_guilds(
    tmp_path: Path, llm: ScriptedLLM
) -> None:
    discord = FakeDiscord()
    zero = discord.add_guild("Shard Zero", shard=(0, 2))
    one = discord.add_guild("Shard One", shard=(1, 2))
    on_zero = discord.add_channel("on-zero", guild_id=zero)
    on_one = discord.add_channel("on-one", guild_id=one)
    served = {g for g in discord.world.guilds if (g >> 22) % 2 == 1}  # the usual guild, maybe
    assert one in served and zero not in served

    # As the README's second machine runs it: the shard variables, nothing in config.yaml.
    result = await check_discord(
        discord, llm, tmp_path, DISCORD__SHARD_COUNT="2", DISCORD__SHARD_IDS="[1]"
    )
    rows = rows_of(result)
    assert rows["discord"].startswith("OK"), result.stdout + result.stderr
    listed = rows["discord"].split(f"{len(served)} guild(s): ", 1)[1].split(", ")
    assert sorted(listed) == sorted(f"{discord.world.guilds[g]} ({g})" for g in served)
    assert "Shard Zero" not in result.stdout
    checked = {name for name in rows if name.startswith("channel:")}
    assert checked == text_channels(discord, served)
    assert f"channel:{on_one}" in checked and f"channel:{on_zero}" not in checked
