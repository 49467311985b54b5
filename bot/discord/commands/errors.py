"""What a user sees when a slash command fails: one line, instead of Discord's "The application
did not respond". discord.py's default only logs the error."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bot.discord.commands.deadline import reply
from bot.discord.streaming import describe, is_transient

log = logging.getLogger(__name__)

COMMAND_FAILED = "Sorry, /{name} didn't work: {why}. Please try again."
WHY_TRANSIENT = "Discord couldn't be reached just then"
WHY_OURS = "something went wrong on my side (the bot's log has the details)"


async def on_command_error(
    interaction: discord.Interaction[Any], error: app_commands.AppCommandError
) -> None:
    command = interaction.command
    name = command.qualified_name if command is not None else "that command"
    cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    log.error(
        "/%s failed for user %s in channel %s: %s",
        name,
        interaction.user.id,
        interaction.channel_id,
        describe(cause),
        exc_info=cause,
    )
    why = WHY_TRANSIENT if is_transient(cause) else WHY_OURS
    line = COMMAND_FAILED.format(name=name, why=why)
    try:
        await reply(interaction, line)
    except Exception as exc:  # the interaction expired, or Discord is still unreachable
        log.warning("could not tell the user that /%s failed: %s", name, describe(exc))
