"""/stop and the Stop button: a person ends a running answer, keeping what it has shown."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.core.state import TurnRequest
from bot.discord.commands.conversation import key_for, refuse_outsiders

if TYPE_CHECKING:
    from bot.discord.host import BotHost

NOTHING_RUNNING = "Nothing of yours is running here."
NOTHING_AT_ALL = "Nothing is running here."
NOT_YOURS = "Only the person who asked, admins and managers can stop this answer."
EVERYONE_REFUSED = "Only admins and managers can stop everyone's answers."
STALE = "This answer has already finished."
STOPPED = "⏹ Stopped."


def custom_id(turn_id: str) -> str:
    return f"mcps:{turn_id}"


class StopButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"mcps:(?P<turn>[A-Za-z0-9_-]{1,40})",
):
    """Rebuilt from its custom_id on every click; after a restart its turn is gone (stale)."""

    def __init__(self, turn_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Stop",
                emoji="⏹",
                style=discord.ButtonStyle.secondary,
                custom_id=custom_id(turn_id),
            )
        )
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> StopButton:
        return cls(match["turn"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: BotHost = interaction.client  # type: ignore[assignment]
        turn = bot.services.conversations.running(self.turn_id)
        if turn is None:
            await interaction.response.send_message(STALE, ephemeral=True)
            return
        if not may_stop(bot, interaction.user, turn):
            await interaction.response.send_message(NOT_YOURS, ephemeral=True)
            return
        stopped = turn.stop.request(interaction.user.display_name)
        await interaction.response.send_message(STOPPED if stopped else STALE, ephemeral=True)


def stop_view(turn_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(StopButton(turn_id))
    return view


def may_stop(bot: BotHost, user: Any, turn: TurnRequest) -> bool:
    """The asker, admins and managers (manager_roles) may stop a turn."""
    return user.id == turn.user_id or bot.access.is_manager(user)


@app_commands.command(name="stop", description="Stop my answer that is running here.")
@app_commands.describe(everyone="Admins and managers: stop every answer running in this channel.")
async def stop(interaction: discord.Interaction[Any], everyone: bool = False) -> None:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    if await refuse_outsiders(bot, interaction):
        return
    user = interaction.user
    running = bot.services.conversations.running_in(
        interaction.guild_id or 0, interaction.channel_id or 0
    )
    if everyone:
        if not bot.access.is_manager(user):
            await interaction.response.send_message(EVERYONE_REFUSED, ephemeral=True)
            return
        count = sum(turn.stop.request(user.display_name) for turn in running)
        reply = f"⏹ Stopped {count} answer(s)." if count else NOTHING_AT_ALL
        await interaction.response.send_message(reply, ephemeral=True)
        return
    key = key_for(bot, interaction)
    mine = [turn for turn in running if turn.key == key]
    if not mine:
        await interaction.response.send_message(NOTHING_RUNNING, ephemeral=True)
        return
    if not all(may_stop(bot, user, turn) for turn in mine):
        await interaction.response.send_message(NOT_YOURS, ephemeral=True)
        return
    count = sum(turn.stop.request(user.display_name) for turn in mine)
    await interaction.response.send_message(STOPPED if count else NOTHING_RUNNING, ephemeral=True)
