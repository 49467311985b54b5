"""Slash commands: /reset, /tools and /model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.core.conversations import conversation_key

if TYPE_CHECKING:
    from bot.discord.client import McpcordBot


def _key_for(bot: McpcordBot, interaction: discord.Interaction[Any]) -> Any:
    channel = interaction.channel
    return conversation_key(
        bot.services.settings.discord.scope,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id or 0,
        user_id=interaction.user.id,
        in_thread=isinstance(channel, discord.Thread),
    )


@app_commands.command(name="reset", description="Forget our conversation here; I start fresh.")
@app_commands.describe(everyone="Admins only: forget every conversation in this channel.")
async def reset(interaction: discord.Interaction[Any], everyone: bool = False) -> None:
    bot: McpcordBot = interaction.client  # type: ignore[assignment]
    store = bot.services.store
    if everyone:
        if not bot.access.is_admin(interaction.user):
            await interaction.response.send_message(
                "Only admins can reset everyone's conversations.", ephemeral=True
            )
            return
        count = await store.reset_channel(interaction.guild_id or 0, interaction.channel_id or 0)
        await interaction.response.send_message(
            f"Forgot {count} conversation(s) in this channel.", ephemeral=True
        )
        return
    key = _key_for(bot, interaction)
    if bot.services.conversations.busy(key):
        # A running turn would save its state after the reset and bring the history back.
        await interaction.response.send_message(
            "I'm still answering you here. Try /reset again when I'm done.", ephemeral=True
        )
        return
    forgot = await store.reset_conversation(key)
    await interaction.response.send_message(
        "Done: I've forgotten our conversation here." if forgot else "There was nothing to forget.",
        ephemeral=True,
    )


@app_commands.command(name="tools", description="List the tools I can use and their approval rule.")
async def tools(interaction: discord.Interaction[Any]) -> None:
    bot: McpcordBot = interaction.client  # type: ignore[assignment]
    lines = bot.services.describe_tools()
    text = "\n".join(lines) if lines else "No tools are configured."
    if len(text) > 1900:
        text = text[:1900] + "\n… (more)"
    await interaction.response.send_message(text, ephemeral=True)


@app_commands.command(name="model", description="Choose the model for our conversation here.")
@app_commands.describe(name="One of the models the operator allows; empty shows them.")
async def model(interaction: discord.Interaction[Any], name: str | None = None) -> None:
    bot: McpcordBot = interaction.client  # type: ignore[assignment]
    llm = bot.services.settings.llm
    allowed = llm.models or [llm.model]
    if not name:
        await interaction.response.send_message(
            "Models: " + ", ".join(f"`{m}`" for m in allowed), ephemeral=True
        )
        return
    if name not in allowed:
        await interaction.response.send_message(
            f"`{name}` is not allowed here. Choose one of: " + ", ".join(allowed), ephemeral=True
        )
        return
    await bot.services.store.set_conversation_model(_key_for(bot, interaction), name)
    await interaction.response.send_message(f"Using `{name}` from now on.", ephemeral=True)


ALL_COMMANDS: tuple[app_commands.Command[Any, ..., None], ...] = (reset, tools, model)
