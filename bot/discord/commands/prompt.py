"""/prompt: start a turn from an MCP server's prompt template, answered like a mention."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.core.conversations import conversation_key
from bot.core.limits import Reservation
from bot.core.state import TurnRequest
from bot.discord.channel_prompt import effective_prompt
from bot.discord.commands.conversation import is_outsider, refuse_outsiders
from bot.discord.handlers import answer, channel_settings
from bot.discord.streaming import NO_MENTIONS
from bot.tools.mcp_prompts import PromptError, PromptInfo, check_arguments, parse_arguments

if TYPE_CHECKING:
    from bot.discord.host import BotHost

log = logging.getLogger(__name__)

MAX_CHOICES = 25  # Discord's limit for autocomplete answers
MAX_CHOICE_CHARS = 100


def prompt_choices(prompts: list[PromptInfo], typed: str) -> list[app_commands.Choice[str]]:
    """`<server>/<prompt>` names matching what was typed, each shown with its description."""
    typed = typed.lower()
    found = [p for p in prompts if typed in p.full_name.lower()]
    choices = []
    for p in found[:MAX_CHOICES]:
        shown = f"{p.full_name} — {p.description}" if p.description else p.full_name
        choices.append(app_commands.Choice(name=shown[:MAX_CHOICE_CHARS], value=p.full_name))
    return choices


def argument_choices(
    prompt: PromptInfo, typed: str, completions: list[str]
) -> list[app_commands.Choice[str]]:
    """Whole `arguments` strings: the part typed so far, then a suggestion for the last item
    (an argument name still missing, or the server's completions of its value)."""
    head, _, last = typed.rpartition(";")
    prefix = f"{head.strip()}; " if head.strip() else ""
    key, sep, _value = last.partition("=")
    options: list[str] = []
    if sep and completions:
        options = [f"{prefix}{key.strip()}={c}" for c in completions]
    elif not sep:
        given = set(_given(head))
        names = [a.name for a in prompt.arguments if a.name not in given]
        options = [f"{prefix}{n}=" for n in names if n.startswith(last.strip())]
    if typed.strip() and typed.strip() not in options:
        options.insert(0, typed.strip())
    return [
        app_commands.Choice(name=o[:MAX_CHOICE_CHARS], value=o[:MAX_CHOICE_CHARS])
        for o in options[:MAX_CHOICES]
    ]


def _given(text: str) -> dict[str, str]:
    try:
        return parse_arguments(text)
    except PromptError:
        return {}


def _missing_send(interaction: discord.Interaction[Any], channel: Any) -> str | None:
    guild = interaction.guild
    if guild is None or not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
        return None
    thread = isinstance(channel, discord.Thread)
    allowed = channel.permissions_for(guild.me)
    if allowed.send_messages_in_threads if thread else allowed.send_messages:
        return None
    return "Send Messages in Threads" if thread else "Send Messages"


async def _refuse(interaction: discord.Interaction[Any], text: str) -> None:
    await interaction.response.send_message(text, ephemeral=True)


@app_commands.command(name="prompt", description="Ask using a prompt template of an MCP server.")
@app_commands.describe(
    name="The prompt template, as <server>/<prompt> (pick one from the list).",
    arguments="Its arguments as key=value; key=value (suggested as you type).",
)
async def prompt(
    interaction: discord.Interaction[Any], name: str, arguments: str | None = None
) -> None:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    # First: an outsider learns nothing, not even which prompts exist (DMs follow allow_dms).
    if await refuse_outsiders(bot, interaction):
        return
    tools = bot.services.tools
    info = tools.find_prompt(name) if tools is not None else None
    if tools is None or info is None:
        await _refuse(interaction, f"There is no prompt `{name}`; pick one from the list.")
        return
    channel: Any = interaction.channel
    if not bot.accepting:
        await _refuse(interaction, "I'm restarting; ask again in a minute.")
        return
    if channel is None:
        await _refuse(interaction, "I don't answer here.")
        return
    missing = _missing_send(interaction, channel)
    if missing:
        # The answer goes into the channel, as for a mention: nobody would see it.
        await _refuse(interaction, f"I can't answer here: I lack the {missing} permission.")
        return
    try:
        values = parse_arguments(arguments)
        check_arguments(info, values)
    except PromptError as exc:
        await _refuse(interaction, str(exc))
        return
    # Reserved before any await, as for a mention; held until the turn ends.
    reservation = bot.services.limits.reserve(interaction.user.id)
    if isinstance(reservation, str):
        await _refuse(interaction, reservation)
        return
    handed_over = False
    try:
        refusal = await bot.services.limits.admit(interaction.user.id, reservation)
        if refusal:
            await _refuse(interaction, refusal)
            return
        await interaction.response.defer(thinking=True)
        try:
            text = await tools.get_prompt(info, values)
        except PromptError as exc:
            await interaction.followup.send(str(exc), allowed_mentions=NO_MENTIONS)
            return
        shown = "; ".join(f"{k}={v}" for k, v in values.items())
        header = f"📝 `{info.full_name}`" + (f" ({shown})" if shown else "")
        # The deferred answer becomes the question the reply hangs under, as a mention would be.
        source = await interaction.followup.send(
            f"{header[:1900]}, asked by {interaction.user.mention}",
            wait=True,
            allowed_mentions=NO_MENTIONS,
        )
        here = channel_settings(bot.services.settings, channel)
        instructions = await effective_prompt(bot.services.store, bot.services.settings, channel)
        request = TurnRequest(
            key=conversation_key(
                bot.services.settings.discord.scope,
                guild_id=interaction.guild_id,
                channel_id=channel.id,
                user_id=interaction.user.id,
                in_thread=isinstance(channel, discord.Thread),
            ),
            user_id=interaction.user.id,
            user_name=interaction.user.display_name,
            text=text,
            is_admin=bot.access.is_admin(interaction.user),
            # The channel's own prompt (/system, discord.channels) and model, as for a mention.
            system_prompt=instructions.text,
            model=here.model,
        )
        bot.start_turn(_answer(bot, source, request, reservation))
        handed_over = True
    finally:
        if not handed_over:
            reservation.release()


async def _answer(
    bot: BotHost, source: discord.Message, request: TurnRequest, reservation: Reservation
) -> None:
    with reservation:
        await answer(bot, source, request, None)


@prompt.autocomplete("name")
async def _complete_name(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    tools = bot.services.tools
    if tools is None or is_outsider(bot, interaction):
        return []  # outsiders see no prompt names
    return prompt_choices(tools.prompts(), current)


@prompt.autocomplete("arguments")
async def _complete_arguments(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    tools = bot.services.tools
    if is_outsider(bot, interaction):
        return []  # completions ask the MCP server: not for outsiders
    name = getattr(interaction.namespace, "name", None)
    info = tools.find_prompt(name) if tools is not None and name else None
    if tools is None or info is None:
        return []
    head, _, last = current.rpartition(";")
    key, sep, value = last.partition("=")
    completions: list[str] = []
    if sep and key.strip() in {a.name for a in info.arguments}:
        completions = await tools.complete_prompt(info, key.strip(), value.strip(), _given(head))
    return argument_choices(info, current, completions)
