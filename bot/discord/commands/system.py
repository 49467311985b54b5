"""/system: show this channel's system prompt; managers set it (kept in SQLite) or clear it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.discord.channel_prompt import effective_prompt
from bot.discord.commands.conversation import MAX_REPLY, refuse_outsiders
from bot.discord.commands.deadline import guard, reply

if TYPE_CHECKING:
    from bot.discord.host import BotHost

log = logging.getLogger(__name__)

# Discord allows 6000 characters in a string option; a prompt is sent with every request, so
# a shorter cap keeps one channel from filling the model's window with instructions.
MAX_PROMPT = 4000
MANAGERS_ONLY = (
    "Only admins and members with a manager role can change the system prompt. "
    "Use /system without options to see it."
)


def _shown(text: str) -> str:
    if len(text) <= MAX_REPLY - 100:
        return text
    cut = MAX_REPLY - 100
    return f"{text[:cut]}\n… ({len(text) - cut} more characters)"


@app_commands.command(
    name="system", description="Show this channel's system prompt; managers can change it."
)
@app_commands.describe(
    prompt="Managers: the new system prompt for this channel or thread ({date} becomes today).",
    clear="Managers: drop the prompt set with /system here and use the configured one again.",
)
async def system(
    interaction: discord.Interaction[Any],
    prompt: app_commands.Range[str, 1, MAX_PROMPT] | None = None,
    clear: bool = False,
) -> None:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    if await refuse_outsiders(bot, interaction):
        return
    channel = interaction.channel
    store, settings = bot.services.store, bot.services.settings
    if channel is None:
        await interaction.response.send_message(
            "I can't tell which channel this is.", ephemeral=True
        )
        return

    async def say(text: str) -> None:
        await reply(interaction, text, allowed_mentions=discord.AllowedMentions.none())

    guard(interaction)

    if prompt is None and not clear:
        current = await effective_prompt(store, settings, channel)
        await say(f"System prompt here ({current.source}):\n{_shown(current.text)}")
        return
    # Showing is harmless; changing what the model is told is for managers only.
    if not bot.access.is_manager(interaction.user):
        await say(MANAGERS_ONLY)
        return
    if prompt is not None and clear:
        await say("Give either `prompt` or `clear`, not both.")
        return
    if clear:
        removed = await store.clear_channel_prompt(channel.id)
        if removed:
            log.info("system prompt of channel %s cleared by %s", channel.id, interaction.user.id)
        now = await effective_prompt(store, settings, channel)
        head = "Cleared." if removed else "No prompt was set with /system here."
        await say(f"{head} Now using {now.source}:\n{_shown(now.text)}")
        return
    assert prompt is not None
    text = prompt.strip()
    if not text:
        await say("The prompt is empty; use `clear` to go back to the configured one.")
        return
    await store.set_channel_prompt(interaction.guild_id or 0, channel.id, text, interaction.user.id)
    # Who and where, not what: the operator reads it with /system; logs need not hold it.
    log.info(
        "system prompt of channel %s set by %s (%d chars)",
        channel.id,
        interaction.user.id,
        len(text),
    )
    where = "thread" if isinstance(channel, discord.Thread) else "channel"
    await say(f"From the next question on, this {where} uses:\n{_shown(text)}")
