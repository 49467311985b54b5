"""/status: which backend, model and scope apply here, what is stored, and what you have spent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.core.state import ConversationState
from bot.discord.channel_prompt import effective_prompt
from bot.discord.commands.conversation import MAX_REPLY, key_for, refuse_outsiders
from bot.discord.commands.deadline import guard, reply
from bot.discord.handlers import channel_settings
from bot.store.records import UsageTotals

if TYPE_CHECKING:
    from bot.discord.host import BotHost

SCOPES = {
    "user": "user: your own conversation in this channel",
    "channel": "channel: one conversation shared by everyone in this channel",
    "thread": "thread: one shared conversation per thread, your own in ordinary channels",
}


def money(usd: float) -> str:
    return "$0" if usd == 0 else f"${usd:.4f}" if usd >= 0.0001 else "< $0.0001"


def describe_usage(totals: UsageTotals) -> str:
    """Tokens in and out (with their cached and reasoning parts), turns and cost, on one line."""
    if not totals.turns:
        return "nothing yet"
    written = (
        f", {totals.cache_write_tokens:,} written to the cache" if totals.cache_write_tokens else ""
    )
    tokens = (
        f"{totals.input_tokens:,} input tokens ({totals.cached_input_tokens:,} cached{written}), "
        f"{totals.output_tokens:,} output tokens ({totals.reasoning_tokens:,} reasoning), "
        f"{totals.turns:,} turn(s)"
    )
    priced = totals.turns - totals.unpriced_turns
    if not priced:
        return f"{tokens}, cost unknown"
    cost = money(totals.cost_usd)
    if totals.unpriced_turns:
        cost += f" (plus {totals.unpriced_turns} turn(s) on models without a known price)"
    return f"{tokens}, {cost}"


def describe_stored(state: ConversationState | None, backend: str, llm_state: str) -> str:
    """What this conversation keeps. Server-side state is not counted: only the server knows."""
    if state is None or state.backend != backend:
        return "nothing stored yet"
    if state.previous_response_id:
        return "kept by the model server (the bot keeps a pointer to the last answer)"
    count = len(state.history)
    if backend == "responses" and llm_state == "server" and not count:
        return "nothing stored yet"
    return f"{count} message(s) stored"


async def describe_retention(
    store: Any, days: int | None, key: Any, state: ConversationState | None
) -> str:
    """When storage.retention_days forgets this conversation (counted from its last change)."""
    if days is None:
        return "**Retention**: kept until /reset or /forget"
    updated = await store.conversation_updated_at(key) if state is not None else None
    if updated is None:
        return f"**Retention**: conversations are forgotten after {days} idle day(s)"
    due = int((updated + timedelta(days=days)).timestamp())
    return f"**Forgotten**: <t:{due}:R> unless it continues (storage.retention_days: {days})"


@app_commands.command(
    name="status", description="Show the model, scope, stored history and token use here."
)
async def status(interaction: discord.Interaction[Any]) -> None:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    if await refuse_outsiders(bot, interaction):
        return
    guard(interaction)
    services = bot.services
    settings, store = services.settings, services.store
    llm = settings.llm
    key = key_for(bot, interaction)
    state = await store.load_conversation(key)
    channel = interaction.channel
    here = channel_settings(settings, channel) if channel is not None else None
    # The backends' rule: a /model choice, else the channel's model, else llm.model.
    if state is not None and state.model:
        model, why = state.model, "your /model choice" if key.user_id else "chosen with /model"
    elif here is not None and here.model:
        model, why = here.model, "this channel's model"
    else:
        model, why = llm.model, "llm.model"
    backend = services.conversations.backend.name
    mode = f", state: {llm.state}" if backend == "responses" else ""
    lines = [
        f"**Backend**: {backend}{mode}",
        f"**Model**: `{model}` ({why})",
        f"**Scope**: {SCOPES[settings.discord.scope]}",
        f"**Conversation**: {describe_stored(state, backend, llm.state)}",
        await describe_retention(store, settings.storage.retention_days, key, state),
    ]
    if channel is not None:
        prompt = await effective_prompt(store, settings, channel)
        lines.append(f"**System prompt**: {prompt.source} (/system shows it)")
    now = datetime.now(UTC)
    day, month = now - timedelta(days=1), now - timedelta(days=30)
    user_id = interaction.user.id
    # The user's totals everywhere, as the daily limits count them.
    mine_day = await store.user_usage_since(user_id, day)
    mine_month = await store.user_usage_since(user_id, month)
    lines += [
        f"**You, all channels, last 24 hours**: {describe_usage(mine_day)}",
        f"**You, all channels, last 30 days**: {describe_usage(mine_month)}",
    ]
    limits = settings.limits
    if limits.user_daily_tokens is not None or limits.user_daily_cost_usd is not None:
        allowed = [f"{limits.user_daily_tokens:,} tokens"] if limits.user_daily_tokens else []
        if limits.user_daily_cost_usd is not None:
            allowed.append(f"${limits.user_daily_cost_usd:g}")
        lines.append(f"**Your allowance per 24 hours**: {' and '.join(allowed)}")
    if bot.access.is_manager(interaction.user):
        guild_id, channel_id = key.guild_id, interaction.channel_id or 0
        channel_day = await store.channel_usage_since(guild_id, channel_id, day)
        channel_month = await store.channel_usage_since(guild_id, channel_id, month)
        lines += [
            f"**This channel, everyone, last 24 hours**: {describe_usage(channel_day)}",
            f"**This channel, everyone, last 30 days**: {describe_usage(channel_month)}",
        ]
    text = "\n".join(lines)
    await reply(interaction, text[:MAX_REPLY], allowed_mentions=discord.AllowedMentions.none())
