"""Commands that wait on the store still answer: Discord drops an interaction nobody
acknowledged within 3 s, and a store call can wait up to its busy_timeout (5 s) while another
process (a CLI command, a backup) holds the database's write lock.

A command that may wait calls `guard(interaction)` first and answers with `reply`: when it
is still busy 1.5 s in, the guard acknowledges the interaction ("thinking…", only the user sees
it) and the answer follows as a follow-up. A quick command answers as before. One lock per
interaction keeps the guard and the answer from both acknowledging it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from bot.discord.streaming import describe

log = logging.getLogger(__name__)

ACKNOWLEDGE_AFTER_S = 1.5  # well inside Discord's 3 s, counted from when the command started
_LOCK = "mcpcord.answer_lock"
_GUARD = "mcpcord.deadline_guard"


def _lock(interaction: discord.Interaction[Any]) -> asyncio.Lock:
    lock = interaction.extras.get(_LOCK)
    if lock is None:
        lock = interaction.extras[_LOCK] = asyncio.Lock()
    return lock  # type: ignore[no-any-return]


def guard(interaction: discord.Interaction[Any]) -> None:
    """Acknowledge the interaction privately if nothing answered it ACKNOWLEDGE_AFTER_S from
    now. The task ends by itself; it is kept on the interaction so it is not collected."""
    interaction.extras[_GUARD] = asyncio.get_running_loop().create_task(
        _acknowledge_late(interaction)
    )


async def _acknowledge_late(interaction: discord.Interaction[Any]) -> None:
    await asyncio.sleep(ACKNOWLEDGE_AFTER_S)
    async with _lock(interaction):
        if interaction.response.is_done():
            return
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as exc:
            log.warning("could not acknowledge a slow command in time: %s", describe(exc))


async def reply(interaction: discord.Interaction[Any], text: str, **kwargs: Any) -> None:
    """The command's private answer: the interaction's response, or a follow-up once the
    guard (or anything else) acknowledged it."""
    async with _lock(interaction):
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, **kwargs)
        else:
            await interaction.response.send_message(text, ephemeral=True, **kwargs)
