"""Slash commands /reset, /tools and /model, and what every command shares: the access lists."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.core.approvals import ApprovalPolicy, is_read_only
from bot.core.conversations import BUSY, conversation_key
from bot.core.state import ConversationKey
from bot.core.tool_calls import rule_name
from bot.discord.commands.deadline import guard, reply
from bot.discord.streaming import split_message

if TYPE_CHECKING:
    from bot.discord.host import BotHost

NOT_HERE = "You can't use my commands here."
MANAGERS_ONLY = (
    "This conversation is shared by everyone here, so only admins and members with a manager "
    "role can {what} it."
)
MAX_REPLY = 1900
MAX_TOOLS_MESSAGES = 5  # /tools' private answer: enough for a dozen busy servers


def key_for(bot: BotHost, interaction: discord.Interaction[Any]) -> ConversationKey:
    channel = interaction.channel
    return conversation_key(
        bot.services.settings.discord.scope,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id or 0,
        user_id=interaction.user.id,
        in_thread=isinstance(channel, discord.Thread),
    )


def is_outsider(bot: BotHost, interaction: discord.Interaction[Any]) -> bool:
    """Whether the access lists (and discord.allow_dms) would not let this user mention the bot
    here. Every command and autocomplete that reaches the model or an MCP server asks this."""
    in_dm = interaction.guild_id is None
    allowed = (
        bot.access.is_owner(interaction.user)
        or not in_dm
        or bot.services.settings.discord.allow_dms
    ) and bot.access.allows(interaction.user, interaction.channel)
    return not allowed


async def refuse_outsiders(bot: BotHost, interaction: discord.Interaction[Any]) -> bool:
    """Answer and return True when the access lists would not let this user mention the bot here."""
    if not is_outsider(bot, interaction):
        return False
    await interaction.response.send_message(NOT_HERE, ephemeral=True)
    return True


@app_commands.command(name="reset", description="Forget our conversation here; I start fresh.")
@app_commands.describe(everyone="Admins only: forget every conversation in this channel.")
async def reset(interaction: discord.Interaction[Any], everyone: bool = False) -> None:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    if await refuse_outsiders(bot, interaction):
        return
    guard(interaction)
    store = bot.services.store
    conversations = bot.services.conversations
    guild_id, channel_id = interaction.guild_id or 0, interaction.channel_id or 0
    if everyone:
        if not bot.access.is_admin(interaction.user):
            await reply(interaction, "Only admins can reset everyone's conversations.")
            return
        if conversations.busy_in_channel(guild_id, channel_id):
            # A running turn would save its state after the reset and bring its history back.
            await reply(interaction, "I'm still answering here. Try /reset again when I'm done.")
            return
        count = await store.reset_channel(guild_id, channel_id)
        await reply(interaction, f"Forgot {count} conversation(s) in this channel.")
        return
    key = key_for(bot, interaction)
    shared = key.user_id == 0
    if shared and not bot.access.is_manager(interaction.user):
        await reply(interaction, MANAGERS_ONLY.format(what="reset"))
        return
    forgot = await conversations.when_idle(key, lambda: store.reset_conversation(key))
    if forgot is BUSY:
        await reply(interaction, "I'm still answering here. Try /reset again when I'm done.")
        return
    here = "this conversation" if shared else "our conversation here"
    await reply(
        interaction, f"Done: I've forgotten {here}." if forgot else "There was nothing to forget."
    )


def _deciders(bot: BotHost, server: str) -> str:
    """Who decides this server's approvals, when it is more than the default (asker or admin)."""
    rule = bot.services.broker.rule(server)
    if not rule.users and not rule.roles and rule.requester_can_approve:
        return ""
    people = [f"<@{u}>" for u in sorted(rule.users)] + [f"<@&{r}>" for r in sorted(rule.roles)]
    people.append("admins")
    if rule.requester_can_approve:
        people.insert(0, "the asker")
    extra = "" if rule.requester_can_approve else "; the asker may only deny"
    return f"; decided by: {', '.join(people)}{extra}"


def _server_features(status: Any) -> str:
    """Prompts and what the server may ask of the bot (sampling, elicitation), in one line."""
    prompts = ", ".join(f"`{status.name}/{p}`" for p in status.prompts) or "none"
    elicit = "yes" if status.elicitation else "no"
    return f"-# prompts: {prompts} · sampling: {status.sampling} · elicitation: {elicit}"


def describe_tools(bot: BotHost, *, is_admin: bool) -> list[str]:
    """One line per server: its approval rule, and per tool whether it asks or why not."""
    services = bot.services
    lines: list[str] = []
    if services.tools is not None:
        specs = services.tools.tools()
        for status in services.tools.status():
            policy = services.policies.get(status.name, ApprovalPolicy())
            if not status.connected:
                # The reason may quote a crashed server's output: for admins' eyes only.
                why = f" ({status.error})" if is_admin and status.error else ""
                lines.append(f"**{status.name}**: unavailable{why}")
                continue
            tools = []
            for spec in (s for s in specs if s.server == status.name):
                read_only = is_read_only(spec.annotations)
                because = policy.unasked_because(rule_name(spec), read_only=read_only)
                mark = f"runs unasked: {because}" if because else "asks first"
                tools.append(f"`{spec.name}` ({mark})")
            names = ", ".join(tools) or "no tools"
            rule = f"approval: {policy.describe()}{_deciders(bot, status.name)}"
            lines.append(f"**{status.name}** ({rule}): {names}")
            lines.append(_server_features(status))
    for name, server in services.settings.mcp.servers.items():
        if server.server_side:
            policy = services.policies.get(name, ApprovalPolicy())
            rule = f"approval: {policy.describe()}{_deciders(bot, name)}"
            lines.append(f"**{name}** (run by the model server; {rule})")
    return lines


@app_commands.command(name="tools", description="List the tools I can use and their approval rule.")
async def tools(interaction: discord.Interaction[Any]) -> None:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    if await refuse_outsiders(bot, interaction):
        return
    lines = describe_tools(bot, is_admin=bot.access.is_admin(interaction.user))
    # Split at line ends over a few private messages: cut at one message, the servers listed
    # last (and their approval rules) would silently go missing.
    parts = split_message("\n".join(lines) or "No tools are configured.", MAX_REPLY)
    if len(parts) > MAX_TOOLS_MESSAGES:
        parts = [*parts[: MAX_TOOLS_MESSAGES - 1], parts[MAX_TOOLS_MESSAGES - 1] + "\n… (more)"]
    none = discord.AllowedMentions.none()
    await interaction.response.send_message(parts[0], ephemeral=True, allowed_mentions=none)
    for part in parts[1:]:
        await interaction.followup.send(part, ephemeral=True, allowed_mentions=none)


@app_commands.command(
    name="model", description="List the models you may use, or switch our conversation here."
)
@app_commands.describe(name="The model to switch to (one of those allowed); leave empty to list.")
async def model(interaction: discord.Interaction[Any], name: str | None = None) -> None:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    if await refuse_outsiders(bot, interaction):
        return
    llm = bot.services.settings.llm
    allowed = llm.model_names() or [llm.model]
    if not name:
        await interaction.response.send_message(
            "Models: " + ", ".join(f"`{m}`" for m in allowed), ephemeral=True
        )
        return
    key = key_for(bot, interaction)
    if key.user_id == 0 and not bot.access.is_manager(interaction.user):
        await interaction.response.send_message(
            MANAGERS_ONLY.format(what="change the model of"), ephemeral=True
        )
        return
    if name not in allowed:
        await interaction.response.send_message(
            f"`{name}` is not allowed here. Choose one of: " + ", ".join(allowed), ephemeral=True
        )
        return
    guard(interaction)
    await bot.services.store.set_conversation_model(key, name)
    await reply(interaction, f"Using `{name}` from now on.")


ALL_COMMANDS: tuple[app_commands.Command[Any, ..., None], ...] = (reset, tools, model)
