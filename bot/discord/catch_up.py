"""At start-up: mentions of the bot (and replies to it) posted while it was down, answered once."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord

from bot.discord import handlers
from bot.discord.streaming.retry import describe

if TYPE_CHECKING:
    from bot.discord.host import BotHost

log = logging.getLogger(__name__)

OFFLINE_LINE = "-# asked while I was offline"
MAX_ANSWERS = 20  # per start, in all
MAX_READ = 100  # messages read per channel


async def catch_up(bot: BotHost, catch_up_s: float) -> None:
    """In each channel where the bot handled a message in the last 7 days, the messages after the
    newest one it handled, no older than `catch_up_s`, that mention it or reply to it: the newest
    per user per channel, the newest MAX_ANSWERS in all, answered oldest first through the
    normal path (which notes each as handled, so no later start answers it again)."""
    if catch_up_s <= 0:
        return
    client: Any = bot  # a discord.Client: the host Protocol names only what turns use
    me = client.user
    store = bot.services.store
    cutoff = discord.utils.utcnow() - timedelta(seconds=catch_up_s)
    newest: dict[tuple[int, int], discord.Message] = {}
    for channel_id, last_id in (await store.last_handled_by_channel()).items():
        after = max(last_id, discord.utils.time_snowflake(cutoff))
        try:
            channel = client.get_channel(channel_id) or await client.fetch_channel(channel_id)
            async for message in channel.history(
                limit=MAX_READ, after=discord.Object(after), oldest_first=True
            ):
                if message.author.bot or message.created_at < cutoff:
                    continue
                if not handlers.is_addressed(message, me, False, open_channel=False):
                    continue  # open channels' chatter and others' talk are not questions
                newest[(channel_id, message.author.id)] = message
        except discord.HTTPException as exc:
            log.info("catch-up: could not read channel %s: %s", channel_id, describe(exc))
    handled = await store.handled_among([m.id for m in newest.values()])
    missed = sorted((m for m in newest.values() if m.id not in handled), key=lambda m: m.id)
    missed = missed[-MAX_ANSWERS:]
    log.info("catch-up: %d question(s) asked while the bot was down", len(missed))
    for message in missed:
        bot.start_turn(handlers.on_message(bot, message, notice=OFFLINE_LINE))
